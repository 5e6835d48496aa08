#include "storage/Db.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <thread>

#include "common/Error.h"
#include "common/Log.h"

namespace segnode::storage {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int schemaVersion(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt(); }

void backupDatabase(SQLite::Database& db, const std::filesystem::path& file) {
  if (std::filesystem::exists(file)) throw Error(ErrorCode::InvalidArgument, file.string() + " exists: choose a new file");
  try {
    db.backup(file.c_str(), SQLite::Database::Save);
  } catch (const SQLite::Exception& e) {
    std::error_code ec;
    std::filesystem::remove(file, ec);
    throw Error(ErrorCode::Io, file.string() + ": backup failed: " + e.what());
  }
}

Connection openDatabase(const std::filesystem::path& file, Access access) {
  const bool owner = access == Access::Owner;
  if (!owner && !std::filesystem::exists(file))
    throw Error(ErrorCode::NotFound, file.string() + ": no database yet (has segnoded run with this config?)");
  Connection db;
  try {
    if (owner && file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
    int flags = access == Access::ReadOnly ? SQLite::OPEN_READONLY
                : owner                    ? (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE)
                                           : SQLite::OPEN_READWRITE;
    db = std::make_shared<SQLite::Database>(file.string(), flags, /*busyTimeoutMs=*/10000);
    if (owner) db->exec("PRAGMA journal_mode = WAL");
    db->exec("PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA foreign_keys = ON");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Io, file.string() + ": cannot open database: " + e.what());
  }
  const auto& all = migrations();
  int version = schemaVersion(*db);
  if (version > int(all.size()))
    throw Error(ErrorCode::BadConfig, file.string() + ": schema version " + std::to_string(version) +
                                          " is newer than this program knows (" + std::to_string(all.size()) +
                                          "); run the newer segnode or restore a backup");
  if (!owner) {
    if (version < int(all.size()))
      throw Error(ErrorCode::BadConfig, file.string() + ": schema version " + std::to_string(version) +
                                            " is older than this program's (" + std::to_string(all.size()) +
                                            "); start the matching segnoded once to migrate it");
    return db;
  }
  for (int v = version; v < int(all.size()); ++v) {
    SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
    db->exec(all[size_t(v)].sql);
    db->exec("PRAGMA user_version = " + std::to_string(v + 1));
    tx.commit();
    SEGNODE_LOG(Info, Db, file.string() << ": applied migration " << all[size_t(v)].name);
  }
  return db;
}

bool recordWithRetry(const std::function<void()>& write, std::string& lastError) {
  for (int pauseMs = 100;; pauseMs *= 2) {
    try {
      write();
      return true;
    } catch (const std::exception& e) {
      lastError = e.what();
    }
    if (pauseMs > 1600) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(pauseMs));
  }
}

}  // namespace segnode::storage

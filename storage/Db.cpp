#include "storage/Db.h"

#include <chrono>

#include "common/Error.h"
#include "common/Log.h"

namespace segnode::storage {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int schemaVersion(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt(); }

std::unique_ptr<SQLite::Database> openDatabase(const std::filesystem::path& file, bool readOnly) {
  std::unique_ptr<SQLite::Database> db;
  try {
    if (!readOnly && file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
    int flags = readOnly ? SQLite::OPEN_READONLY : (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db = std::make_unique<SQLite::Database>(file.string(), flags, /*busyTimeoutMs=*/10000);
    if (!readOnly) db->exec("PRAGMA journal_mode = WAL");
    db->exec("PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA foreign_keys = ON");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Io, file.string() + ": cannot open database: " + e.what());
  }
  if (readOnly) return db;
  const auto& all = migrations();
  int version = schemaVersion(*db);
  if (version > int(all.size()))
    throw Error(ErrorCode::BadConfig, file.string() + ": schema version " + std::to_string(version) +
                                          " is newer than this program knows (" + std::to_string(all.size()) +
                                          "); run the newer segnode or restore a backup");
  for (int v = version; v < int(all.size()); ++v) {
    SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
    db->exec(all[size_t(v)].sql);
    db->exec("PRAGMA user_version = " + std::to_string(v + 1));
    tx.commit();
    SEGNODE_LOG(Info, Db, file.string() << ": applied migration " << all[size_t(v)].name);
  }
  return db;
}

}  // namespace segnode::storage

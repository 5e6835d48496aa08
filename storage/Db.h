#pragma once
// Opening the SQLite database: every connection gets the same settings (WAL, synchronous NORMAL:
// never corrupt, and the writers that must be durable - ingest - flush with syncFilesystems()
// before they acknowledge; foreign keys; busy timeout), and the schema is brought to
// the newest version by numbered migrations (PRAGMA user_version = how many have run).
#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace segnode::storage {

struct Migration {
  const char* name;  // e.g. 001_initial.sql
  const char* sql;
};
const std::vector<Migration>& migrations();  // generated from storage/migrations/

// Opens (creating if needed) and migrates. Throws segnode::Error(Io/BadConfig) naming the file.
std::unique_ptr<SQLite::Database> openDatabase(const std::filesystem::path& file, bool readOnly = false);

int schemaVersion(SQLite::Database& db);

// Milliseconds since the Unix epoch: the one clock stored in the database.
int64_t nowMs();

}  // namespace segnode::storage

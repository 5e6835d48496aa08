#pragma once
// Opening the SQLite database: every connection gets the same settings (WAL, synchronous NORMAL:
// never corrupt, and the writers that must be durable - ingest - flush with syncFilesystems()
// before they acknowledge; foreign keys; busy timeout), and the schema is brought to
// the newest version by numbered migrations (PRAGMA user_version = how many have run).
// SQLiteCpp stays inside storage/: other parts hold a Connection and pass it to Index and Jobs.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace SQLite {
class Database;
}

namespace segnode::storage {

using Connection = std::shared_ptr<SQLite::Database>;

struct Migration {
  const char* name;  // e.g. 001_initial.sql
  const char* sql;
};
const std::vector<Migration>& migrations();  // generated from storage/migrations/

enum class Access {
  Owner,      // the daemon: creates the file if needed and migrates the schema to the newest
  ReadOnly,   // segnode status / jobs: never writes
  ReadWrite,  // segnode retry: writes rows, never creates or migrates
};
// Throws segnode::Error naming the file: Io when it cannot be opened, NotFound when a non-owner
// finds no database, BadConfig when the schema is newer than this program knows, or (non-owner)
// older: a newer CLI must never migrate, or misread, the database of a running older daemon.
Connection openDatabase(const std::filesystem::path& file, Access access = Access::Owner);

int schemaVersion(SQLite::Database& db);

// Milliseconds since the Unix epoch: the one clock stored in the database.
int64_t nowMs();

}  // namespace segnode::storage

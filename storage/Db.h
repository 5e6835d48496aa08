#pragma once
// Opening the SQLite database: every connection gets the same settings (WAL, synchronous NORMAL:
// never corrupt, and the writers that must be durable - ingest - flush with syncFilesystems()
// before they acknowledge; foreign keys; busy timeout), and the schema is brought to
// the newest version by numbered migrations (PRAGMA user_version = how many have run).
// SQLiteCpp stays inside storage/: other parts hold a Connection and pass it to Index and Jobs.
#include <filesystem>
#include <functional>
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

// A consistent copy of the whole database in `file` (SQLite's online backup: the daemon keeps
// running and writing). Throws Error(InvalidArgument) when `file` exists, Error(Io) when the copy
// fails (the partial file is removed).
void backupDatabase(SQLite::Database& db, const std::filesystem::path& file);

// Milliseconds since the Unix epoch: the one clock stored in the database.
int64_t nowMs();

// Records the outcome of work already done (a job's result, a delivery): a failing write (the
// database busy past its timeout, a disk full for a moment) is retried after 0.1, 0.2, 0.4, 0.8
// and 1.6 s. Never throws: false, with the last error, when every try failed; the row then keeps
// its state and start-up recovery takes it up. The workers and senders call only this, so that
// no database error ends their thread, and with it the process.
bool recordWithRetry(const std::function<void()>& write, std::string& lastError);

}  // namespace segnode::storage

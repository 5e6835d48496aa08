#pragma once
// The job queue and the outbox (DESIGN §3): jobs queued -> running -> done | failed | rejected
// (or superseded by a newer generation of their series); outbox rows pending -> sent | dead.
// State lives in SQLite, so a restart picks up where it stopped.
#include "storage/Db.h"
#include "storage/Lifecycle.h"

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace segnode::storage {

struct Job {
  int64_t id = 0;
  std::string seriesUid, route, model, reason;
  JobState state = JobState::Queued;
  int64_t generation = 0;
  std::string segSeriesUid, segSopUid, segPath;
  int64_t segSeriesNumber = 0;
  std::vector<std::string> destinations;  // fixed when the job is made (its route's, then)
  int attempts = 0;                       // times a worker claimed it
  bool sendImplausible = false;           // its route's on_implausible: send_flagged (else reject)
  std::optional<double> confidence;       // of the result (engine/Confidence.h), once finished
  std::string plausibility;               // the check's verdict and reasons, once finished
};

struct OutboxItem {
  int64_t id = 0, jobId = 0;
  std::string destination, segPath, lastError;
  OutboxState state = OutboxState::Pending;
  int attempts = 0;
  int64_t nextAttemptMs = 0;
};

class Jobs {
 public:
  explicit Jobs(SQLite::Database& db) : db_(db) {}

  // New job for a series generation, with its model, destinations and output UIDs fixed now.
  // Older jobs of the series that are not running become superseded. The series moves to processing.
  Job create(const std::string& seriesUid, int64_t generation, const std::string& route, const std::string& model,
             const std::vector<std::string>& destinations, const std::string& segSeriesUid,
             const std::string& segSopUid, bool sendImplausible = false);
  // Jobs made before destinations were stored (NULL): filled from `routeDestinations(route)`
  // (std::nullopt: the route is gone, the job keeps none). Returns the jobs filled.
  int fillLegacyDestinations(
      const std::function<std::optional<std::vector<std::string>>(const std::string& route)>& routeDestinations);
  // The series is done without a job: no route matched, or it was refused; `note` says why.
  void closeUnprocessed(const std::string& seriesUid, const std::string& note);

  std::optional<Job> claimNext();  // queued -> running, oldest first
  // running -> outcome (done, failed or rejected); a job whose series has a newer job meanwhile
  // becomes superseded instead. Returns the state written. A done job gets one outbox row per
  // destination it was made with.
  // `confidence` and `plausibility`: what the plausibility check measured (none for a job that
  // failed before it).
  JobState finish(int64_t jobId, JobState outcome, const std::string& reason, const std::string& segPath,
                  const std::string& timingsJson, std::optional<double> confidence = std::nullopt,
                  const std::string& plausibility = "");
  // At start: jobs left running by a process that ended go back to the queue, except those that
  // had maxAttempts attempts already: they fail with that reason (a poison series).
  struct Requeued { int requeued = 0, givenUp = 0; };
  Requeued requeueRunning(int maxAttempts);
  // A running job the node stopped on purpose (SIGTERM past processing.stop_timeout_s) goes back
  // to the queue with its attempt given back: a shutdown is not a crash of this series.
  void release(int64_t jobId);
  std::vector<Job> list(std::optional<JobState> state, int limit);  // newest first; all states without one

  // Retention of the SEG files: those of jobs finished before cutoffMs whose every delivery was
  // sent (a pending or dead one keeps its file for the sender and `segnode retry`), as (job, path);
  // forgetSeg clears the path once the file is deleted.
  std::vector<std::pair<int64_t, std::string>> deliveredSegsBefore(int64_t cutoffMs);
  void forgetSeg(int64_t jobId);

  std::optional<OutboxItem> nextDue(const std::string& destination, int64_t nowMs);
  std::optional<int64_t> nextAttemptMs(const std::string& destination);
  void markSent(int64_t outboxId);
  void markFailed(int64_t outboxId, const std::string& error, int64_t nextAttemptMs, bool dead);
  // Pending deliveries to a destination that is not configured (any more) are dead-lettered with
  // that reason instead of waiting for a sender that does not exist. Returns how many.
  int deadLetterUnknown(const std::vector<std::string>& configuredDestinations);
  std::vector<OutboxItem> outbox(std::optional<OutboxState> state, int limit);
  int retryJob(int64_t jobId);  // its dead/pending rows -> pending now; returns rows touched
  int retryDead();

 private:
  SQLite::Database& db_;
  std::mutex mutex_;
};

}  // namespace segnode::storage

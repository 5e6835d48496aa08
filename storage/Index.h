#pragma once
// The index of what was received (studies, series, instances), series readiness, refusals.
// Every write is one short IMMEDIATE transaction; the object is safe to share between threads.
#include "storage/Db.h"

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/InstanceHeader.h"
#include "storage/Lifecycle.h"

namespace segnode::storage {

// A received instance as the index keeps it: its header, and who sent it, where it lies, when.
struct InstanceRecord : InstanceHeader {
  std::string callingAe, peerHost;
  std::string filePath, sha256;
  int64_t fileSize = 0;
  int64_t receivedMs = 0;
};

// A resent SOP Instance UID: the newest copy wins. The same file (same UIDs, same content) only
// counts the resend; different content, or another series, replaces the row and makes the series
// receive again.
enum class StoreOutcome { New, Replaced, Duplicate };

struct Stored {
  StoreOutcome outcome = StoreOutcome::New;
  std::string supersededFile;  // Replaced: the file the row named before, to delete once committed
};

struct SeriesInfo {
  std::string uid;
  SeriesState state = SeriesState::Receiving;
  int64_t lastReceivedMs = 0, generation = 0, instanceCount = 0;
};

// What routing looks at for a ready series.
struct SeriesAttributes {
  std::string uid, modality, bodyPart, description, sopClassUid, callingAe, imageType;
  int64_t slices = 0;  // images, counting every frame of multi-frame instances
  int64_t voxels = 0;  // rows x columns x frames, summed over the instances (what loading it would hold)
};

class Index {
 public:
  explicit Index(SQLite::Database& db) : db_(db) {}

  Stored recordInstance(const InstanceRecord& r);
  // Several instances in one transaction (one WAL fsync): used through a GroupCommit.
  std::vector<Stored> recordInstances(const std::vector<InstanceRecord>& records);
  void recordRefusal(const std::string& callingAe, const std::string& peerHost, const std::string& sopInstanceUid,
                     const std::string& reason);
  // The audit trail's association rows: accepted, or refused with the reason.
  void recordAssociation(const std::string& callingAe, const std::string& peerHost, bool accepted, const std::string& reason);

  // Series readiness. markReady moves receiving -> ready (generation + 1) and returns true then;
  // false when the series is not receiving. Whether it is quiet is routing::SeriesAssembler's to
  // say, on the monotonic clock: a wall-clock step must not make a series ready early or late.
  std::vector<SeriesInfo> seriesInState(SeriesState state);
  std::optional<SeriesInfo> series(const std::string& seriesUid);
  std::optional<SeriesAttributes> seriesAttributes(const std::string& seriesUid);
  bool markReady(const std::string& seriesUid);

  // Recovery and retention.
  std::vector<std::pair<std::string, std::string>> instancePaths();  // (sop uid, file path)
  void removeInstance(const std::string& sopInstanceUid);
  std::vector<std::string> seriesDoneBefore(int64_t cutoffMs);
  std::vector<std::string> instanceFilesOfSeries(const std::string& seriesUid);
  void markPurged(const std::string& seriesUid);  // done -> purged

 private:
  Stored recordInTransaction(const InstanceRecord& r);
  SQLite::Database& db_;
  std::mutex mutex_;  // one writer at a time on this connection
};

}  // namespace segnode::storage

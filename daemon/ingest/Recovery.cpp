#include "daemon/ingest/Recovery.h"

#include <set>

#include "common/Log.h"
#include "common/Sha256.h"
#include "storage/Db.h"

namespace segnode::ingest {

RecoveryReport recover(storage::Spool& spool, storage::Index& index, const HeaderReader& readHeader) {
  RecoveryReport rep;
  rep.tempFilesRemoved = spool.removeTemps();
  std::set<std::string> known;
  for (const auto& [sop, path] : index.instancePaths()) {
    if (std::filesystem::exists(path)) {
      known.insert(path);
      continue;
    }
    SEGNODE_LOG(Warn, Db, "recovery: " << sop << " is indexed but " << path << " is missing; row dropped");
    index.removeInstance(sop);
    ++rep.rowsWithoutFile;
  }
  // A file renamed into place whose row was not committed was never acknowledged; it is whole,
  // so it is indexed rather than thrown away (a resend will find it as a duplicate).
  for (const auto& file : spool.files()) {
    if (known.count(file.string())) continue;
    try {
      storage::InstanceRecord r;
      static_cast<InstanceHeader&>(r) = readHeader(file);
      if (spool.pathFor(r.studyUid, r.seriesUid, r.sopInstanceUid) != file) throw std::runtime_error("path does not match its UIDs");
      r.filePath = file.string();
      r.fileSize = int64_t(std::filesystem::file_size(file));
      r.sha256 = sha256File(file);
      r.receivedMs = storage::nowMs();
      index.recordInstance(r);
      ++rep.filesReindexed;
    } catch (const std::exception& e) {
      auto aside = spool.root() / ".quarantine" / file.filename();
      std::filesystem::create_directories(aside.parent_path());
      std::error_code ec;
      std::filesystem::rename(file, aside, ec);
      SEGNODE_LOG(Error, Db, "recovery: " << file.string() << " cannot be indexed (" << e.what() << "); moved to " << aside.string());
      ++rep.filesUnreadable;
    }
  }
  return rep;
}

}  // namespace segnode::ingest

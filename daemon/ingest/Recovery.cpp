#include "daemon/ingest/Recovery.h"

#include <set>

#include "common/Log.h"
#include "common/Sha256.h"
#include "storage/Db.h"

namespace segnode::ingest {

RecoveryReport recover(storage::Spool& spool, storage::Index& index, const HeaderReader& readHeader) {
  RecoveryReport rep;
  rep.tempFilesRemoved = spool.removeTemps();
  std::set<std::string> known, indexedSops;
  for (const auto& [sop, path] : index.instancePaths()) {
    if (std::filesystem::exists(path)) {
      known.insert(path);
      indexedSops.insert(sop);
      continue;
    }
    SEGNODE_LOG(Warn, Db, "recovery: " << sop << " is indexed but " << path << " is missing; row dropped");
    index.removeInstance(sop);
    ++rep.rowsWithoutFile;
  }
  // A file the index does not name is one of two things. A second copy of an indexed SOP instance
  // (a changed resend or a move to another series, its commit or the old copy's removal cut off):
  // the row is what was acknowledged last, so the file goes; re-indexing it would flip the
  // instance between its copies at every restart. Otherwise a file renamed into place whose row
  // was not committed: never acknowledged, but whole, so it is indexed (a resend finds it a duplicate).
  for (const auto& file : spool.files()) {
    if (known.count(file.string())) continue;
    try {
      storage::InstanceRecord r;
      static_cast<InstanceHeader&>(r) = readHeader(file);
      r.sha256 = sha256File(file);
      if (spool.pathFor(r.studyUid, r.seriesUid, r.sopInstanceUid, r.sha256) != file)
        throw std::runtime_error("path does not match its UIDs and content");
      if (indexedSops.count(r.sopInstanceUid)) {
        std::filesystem::remove(file);
        SEGNODE_LOG(Info, Db, "recovery: " << file.string() << " removed: another copy of " << r.sopInstanceUid << " is indexed");
        ++rep.filesSuperseded;
        continue;
      }
      r.filePath = file.string();
      r.fileSize = int64_t(std::filesystem::file_size(file));
      r.receivedMs = storage::nowMs();
      index.recordInstance(r);
      indexedSops.insert(r.sopInstanceUid);
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

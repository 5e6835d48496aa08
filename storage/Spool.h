#pragma once
// The spool of received files: <root>/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.<SHA-256 prefix>.dcm.
// A file is written under <root>/.tmp and renamed into place, so a process crash never leaves half
// a file in the tree. The content's hash is in the name so that a changed resend, or an instance
// moved to another series, never lands on the file the index names: until its row commits, the
// acknowledged copy stays whole (the index then names the stale file, and it is removed). Durability (power loss) comes from syncFilesystems() before a C-STORE is
// acknowledged: one syncfs covers the file data, the rename and the database's WAL together.
// Only UIDs of digits and dots become paths.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace segnode::storage {

// A UID that can name a file: 1-64 chars of digits and dots, no empty component (PS3.5 9.1). A
// leading zero in a component, which the standard forbids but old modalities send, is accepted:
// the PACS stored the study, so refusing it here would only lose it.
bool isValidUid(const std::string& uid);

class Spool {
 public:
  explicit Spool(std::filesystem::path root);
  const std::filesystem::path& root() const { return root_; }

  // Where an instance with these UIDs and this content (hex SHA-256) lies. Throws Error(BadInput)
  // naming the field when a UID is not a valid UID.
  std::filesystem::path pathFor(const std::string& studyUid, const std::string& seriesUid,
                                const std::string& sopInstanceUid, const std::string& sha256) const;
  std::filesystem::path newTempPath() const;
  // mkdir -p -> rename. Throws Error(Io).
  void commit(const std::filesystem::path& tmp, const std::filesystem::path& final) const;

  int removeTemps() const;                            // recovery: half-written files
  std::vector<std::filesystem::path> files() const;   // every spooled .dcm
  uint64_t freeBytes() const;                         // for the disk watermark

 private:
  std::filesystem::path root_;
};

// Flushes every filesystem holding one of `paths` (each device once) with syncfs(2): file data,
// renames and directory entries written before the call are on disk when it returns. One call
// replaces an fsync per file, per directory and per WAL commit. Throws Error(Io).
void syncFilesystems(const std::vector<std::filesystem::path>& paths);

}  // namespace segnode::storage

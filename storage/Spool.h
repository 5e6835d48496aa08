#pragma once
// The durable spool of received files: <root>/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm.
// A file is written under <root>/.tmp, fsync'd, renamed into place and its directory fsync'd, so
// after a crash a file in the tree is always whole. Only syntactically valid UIDs become paths.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace segnode::storage {

// DICOM UID syntax (PS3.5 9.1): 1-64 chars of digits and dots, no empty component, no leading
// zero in a multi-digit component.
bool isValidUid(const std::string& uid);

class Spool {
 public:
  explicit Spool(std::filesystem::path root);
  const std::filesystem::path& root() const { return root_; }

  // Throws Error(BadInput) naming the field when a UID is not a valid UID.
  std::filesystem::path pathFor(const std::string& studyUid, const std::string& seriesUid,
                                const std::string& sopInstanceUid) const;
  std::filesystem::path newTempPath() const;
  // fsync(tmp) -> mkdir -p (fsync'd) -> rename -> fsync(dir). Throws Error(Io).
  void commit(const std::filesystem::path& tmp, const std::filesystem::path& final) const;

  int removeTemps() const;                            // recovery: half-written files
  std::vector<std::filesystem::path> files() const;   // every spooled .dcm
  uint64_t freeBytes() const;                         // for the disk watermark

 private:
  std::filesystem::path root_;
};

void fsyncPath(const std::filesystem::path& p);  // file or directory; throws Error(Io)

}  // namespace segnode::storage

#include "storage/Spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cstring>

#include "common/Error.h"

namespace segnode::storage {

bool isValidUid(const std::string& uid) {
  if (uid.empty() || uid.size() > 64) return false;
  size_t start = 0;
  while (start <= uid.size()) {
    size_t end = uid.find('.', start);
    if (end == std::string::npos) end = uid.size();
    if (end == start) return false;  // empty component (leading, trailing or double dot)
    for (size_t i = start; i < end; ++i)
      if (uid[i] < '0' || uid[i] > '9') return false;
    start = end + 1;
  }
  return true;
}

void syncFilesystems(const std::vector<std::filesystem::path>& paths) {
  std::vector<dev_t> done;
  for (const auto& p : paths) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd < 0) throw Error(ErrorCode::Io, p.string() + ": open for syncfs: " + std::strerror(errno));
    struct stat st{};
    ::fstat(fd, &st);
    int rc = 0, err = 0;
    if (std::find(done.begin(), done.end(), st.st_dev) == done.end()) {
      rc = ::syncfs(fd);
      err = errno;
      done.push_back(st.st_dev);
    }
    ::close(fd);
    if (rc != 0) throw Error(ErrorCode::Io, p.string() + ": syncfs: " + std::strerror(err));
  }
}

Spool::Spool(std::filesystem::path root) : root_(std::move(root)) {
  std::filesystem::create_directories(root_ / ".tmp");
}

std::filesystem::path Spool::pathFor(const std::string& study, const std::string& series, const std::string& sop,
                                     const std::string& sha256) const {
  const std::pair<const char*, const std::string*> uids[] = {
      {"StudyInstanceUID", &study}, {"SeriesInstanceUID", &series}, {"SOPInstanceUID", &sop}};
  for (const auto& [name, value] : uids)
    if (!isValidUid(*value)) throw Error(ErrorCode::BadInput, std::string(name) + " '" + *value + "' is not a valid UID");
  if (sha256.size() < 16) throw Error(ErrorCode::Internal, "Spool::pathFor: '" + sha256 + "' is not a SHA-256");
  // 64 bits of the hash tell the copies of one SOP instance apart; the name stays under 90 chars.
  return root_ / study / series / (sop + "." + sha256.substr(0, 16) + ".dcm");
}

std::filesystem::path Spool::newTempPath() const {
  static std::atomic<uint64_t> counter{0};
  return root_ / ".tmp" / (std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".part");
}

void Spool::commit(const std::filesystem::path& tmp, const std::filesystem::path& final) const {
  std::error_code ec;
  std::filesystem::create_directories(final.parent_path(), ec);
  if (ec && !std::filesystem::is_directory(final.parent_path()))
    throw Error(ErrorCode::Io, final.parent_path().string() + ": cannot create directory: " + ec.message());
  if (::rename(tmp.c_str(), final.c_str()) != 0)
    throw Error(ErrorCode::Io, final.string() + ": rename from " + tmp.string() + ": " + std::strerror(errno));
}

int Spool::removeTemps() const {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root_ / ".tmp", ec)) {
    std::filesystem::remove(e.path(), ec);
    ++n;
  }
  return n;
}

std::vector<std::filesystem::path> Spool::files() const {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root_, ec); it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().filename() == ".tmp") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && it->path().extension() == ".dcm") out.push_back(it->path());
  }
  return out;
}

uint64_t Spool::freeBytes() const {
  struct statvfs s{};
  if (::statvfs(root_.c_str(), &s) != 0) return 0;
  return uint64_t(s.f_bavail) * uint64_t(s.f_frsize);
}

}  // namespace segnode::storage

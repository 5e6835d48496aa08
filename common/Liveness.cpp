#include "common/Liveness.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

namespace segnode {
namespace {

int64_t nowNs() { return std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1); }

// Inodes of the sockets listening on `port` in a /proc/net/tcp{,6} table (state 0A = LISTEN).
void listeningInodes(const char* table, uint16_t port, std::set<std::string>& inodes) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    f >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    auto colon = local.rfind(':');
    if (state != "0A" || colon == std::string::npos) continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) inodes.insert(inode);
  }
}

}  // namespace

int Heartbeats::add(std::string name) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.emplace_back();
  entries_.back().name = std::move(name);
  entries_.back().lastNs = nowNs();
  return int(entries_.size()) - 1;
}

void Heartbeats::beat(int id) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.at(size_t(id)).lastNs.store(nowNs(), std::memory_order_relaxed);
}

void Heartbeats::idle(int id, bool waiting) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& e = entries_.at(size_t(id));
  e.waiting.store(waiting, std::memory_order_relaxed);
  e.lastNs.store(nowNs(), std::memory_order_relaxed);
}

std::vector<std::string> Heartbeats::staleSince(std::chrono::steady_clock::duration limit) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> stale;
  const int64_t cutoff = nowNs() - limit / std::chrono::nanoseconds(1);
  for (const auto& e : entries_)
    if (!e.waiting.load(std::memory_order_relaxed) && e.lastNs.load(std::memory_order_relaxed) < cutoff) stale.push_back(e.name);
  return stale;
}

bool listeningOn(uint16_t port) {
  std::set<std::string> inodes;
  listeningInodes("/proc/self/net/tcp", port, inodes);
  listeningInodes("/proc/self/net/tcp6", port, inodes);
  if (inodes.empty()) return false;
  DIR* fds = opendir("/proc/self/fd");
  if (!fds) return false;
  bool ours = false;
  while (dirent* d = readdir(fds)) {
    char target[128];
    std::string path = std::string("/proc/self/fd/") + d->d_name;
    ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    std::string link(target, size_t(n));  // socket:[12345]
    if (link.rfind("socket:[", 0) == 0 && inodes.count(link.substr(8, link.size() - 9))) ours = true;
  }
  closedir(fds);
  return ours;
}

}  // namespace segnode

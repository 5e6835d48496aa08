#include "daemon/ingest/Retention.h"

#include "common/Log.h"
#include "storage/Db.h"

namespace segnode::ingest {

Retention::Retention(boost::asio::io_context& io, storage::Index& index, storage::Jobs& jobs, storage::Spool& spool,
                     double hours)
    : timer_(io), index_(index), jobs_(jobs), spool_(spool), retentionMs_(int64_t(hours * 3600.0 * 1000.0)) {}

void Retention::start() { boost::asio::post(timer_.get_executor(), [this] { schedule(); }); }

void Retention::schedule() {
  purgeNow();
  // Often enough to honour short retentions, rarely enough to cost nothing.
  auto every = std::chrono::milliseconds(std::clamp<int64_t>(retentionMs_ / 10, 1000, 60000));
  timer_.expires_after(every);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) schedule();
  });
}

int Retention::purgeNow() {
  int purged = 0;
  try {
    for (const auto& series : index_.seriesDoneBefore(storage::nowMs() - retentionMs_)) {
      std::error_code ec;
      std::filesystem::path dir;
      for (const auto& f : index_.instanceFilesOfSeries(series)) {
        std::filesystem::remove(f, ec);
        dir = std::filesystem::path(f).parent_path();
      }
      if (!dir.empty()) {
        std::filesystem::remove(dir, ec);                // the series directory, now empty
        std::filesystem::remove(dir.parent_path(), ec);  // the study's, if this was its last series
      }
      index_.markPurged(series);
      SEGNODE_LOG(Info, Db, "retention: purged spool files of series " << series);
      ++purged;
    }
    purged += purgeSegs(storage::nowMs() - retentionMs_);
  } catch (const std::exception& e) {
    SEGNODE_LOG(Error, Db, "retention: " << e.what());
  }
  return purged;
}

int Retention::purgeSegs(int64_t cutoffMs) {
  int deleted = 0;
  for (const auto& [job, path] : jobs_.deliveredSegsBefore(cutoffMs)) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) {
      SEGNODE_LOG(Warn, Db, "retention: SEG of job " << job << " (" << path << "): " << ec.message());
      continue;
    }
    jobs_.forgetSeg(job);
    SEGNODE_LOG(Info, Db, "retention: deleted the SEG of job " << job << ", delivered to every destination");
    ++deleted;
  }
  return deleted;
}

}  // namespace segnode::ingest

#pragma once
// Deletes the spool files of finished series, and the SEG files whose every delivery was sent,
// once storage.retention_hours have passed (the rows stay, for the audit trail). Runs on an Asio
// timer.
#include <boost/asio.hpp>

#include "storage/Index.h"
#include "storage/Jobs.h"
#include "storage/Spool.h"

namespace segnode::ingest {

class Retention {
 public:
  Retention(boost::asio::io_context& io, storage::Index& index, storage::Jobs& jobs, storage::Spool& spool, double hours);
  void start();
  int purgeNow();  // returns the number of series purged and SEG files deleted

 private:
  void schedule();
  int purgeSegs(int64_t cutoffMs);
  boost::asio::steady_timer timer_;
  storage::Index& index_;
  storage::Jobs& jobs_;
  storage::Spool& spool_;
  int64_t retentionMs_;
};

}  // namespace segnode::ingest

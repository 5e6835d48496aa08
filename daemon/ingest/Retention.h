#pragma once
// Deletes the spool files of finished series once storage.retention_hours have passed (the rows
// stay, marked purged, for the audit trail). Runs on an Asio timer.
#include <boost/asio.hpp>

#include "storage/Index.h"
#include "storage/Spool.h"

namespace segnode::ingest {

class Retention {
 public:
  Retention(boost::asio::io_context& io, storage::Index& index, storage::Spool& spool, double hours);
  void start();
  int purgeNow();  // returns the number of series purged

 private:
  void schedule();
  boost::asio::steady_timer timer_;
  storage::Index& index_;
  storage::Spool& spool_;
  int64_t retentionMs_;
};

}  // namespace segnode::ingest

#include "storage/Index.h"

#include "storage/Db.h"
#include "storage/Sql.h"

namespace segnode::storage {

Stored Index::recordInstance(const InstanceRecord& r) { return recordInstances({r}).front(); }

std::vector<Stored> Index::recordInstances(const std::vector<InstanceRecord>& records) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  std::vector<Stored> out;
  for (const auto& r : records) out.push_back(recordInTransaction(r));
  tx.commit();
  return out;
}

Stored Index::recordInTransaction(const InstanceRecord& r) {
  std::optional<std::string> oldSeries, oldPath;
  {
    SQLite::Statement q(db_, "SELECT series_uid, file_path FROM instances WHERE sop_instance_uid = ?");
    q.bind(1, r.sopInstanceUid);
    if (q.executeStep()) {
      oldSeries = q.getColumn(0).getString();
      oldPath = q.getColumn(1).getString();
    }
  }
  // The spool's path names the UIDs and the content, so the same path is the same instance.
  if (oldPath && *oldPath == r.filePath) {
    SQLite::Statement u(db_, "UPDATE instances SET receive_count = receive_count + 1 WHERE sop_instance_uid = ?");
    u.bind(1, r.sopInstanceUid);
    u.exec();
    return {StoreOutcome::Duplicate, {}};
  }

  SQLite::Statement study(db_,
      "INSERT INTO studies (study_uid, patient_id, patient_name, study_date, study_time, accession_number,"
      " study_description, first_received_ms, last_received_ms)"
      " VALUES (:uid, :pid, :pname, :date, :time, :acc, :desc, :now, :now)"
      " ON CONFLICT(study_uid) DO UPDATE SET last_received_ms = excluded.last_received_ms");
  study.bind(":uid", r.studyUid);
  bindText(study, ":pid", r.patientId);
  bindText(study, ":pname", r.patientName);
  bindText(study, ":date", r.studyDate);
  bindText(study, ":time", r.studyTime);
  bindText(study, ":acc", r.accessionNumber);
  bindText(study, ":desc", r.studyDescription);
  study.bind(":now", r.receivedMs);
  study.exec();

  // A new or changed instance (re)starts the series' quiet period, whatever state it was in.
  const bool counts = !oldSeries || *oldSeries != r.seriesUid;
  using namespace transition;
  static const std::string upsert =
      "INSERT INTO series (series_uid, study_uid, modality, body_part, series_description, series_number,"
      " sop_class_uid, frame_of_reference, calling_ae, instance_count, state, first_received_ms, last_received_ms)"
      " VALUES (:uid, :study, :mod, :body, :desc, :num, :sop, :for, :ae, 1, '" + std::string(sqlName(SeriesState::Receiving)) +
      "', :now, :now) ON CONFLICT(series_uid) DO UPDATE SET last_received_ms = excluded.last_received_ms, state = " +
      sqlMoveValue(kSeriesReceives) + ", instance_count = instance_count + :inc";
  SQLite::Statement series(db_, upsert);
  series.bind(":uid", r.seriesUid);
  series.bind(":study", r.studyUid);
  bindText(series, ":mod", r.modality);
  bindText(series, ":body", r.bodyPart);
  bindText(series, ":desc", r.seriesDescription);
  bindOptional(series, ":num", r.seriesNumber);
  series.bind(":sop", r.sopClassUid);
  bindText(series, ":for", r.frameOfReference);
  bindText(series, ":ae", r.callingAe);
  series.bind(":now", r.receivedMs);
  series.bind(":inc", counts ? 1 : 0);
  series.exec();
  if (oldSeries && *oldSeries != r.seriesUid) {
    static const std::string moved = "UPDATE series SET instance_count = instance_count - 1, state = " +
                                     sqlMoveValue(kSeriesLosesInstance) + ", last_received_ms = ? WHERE series_uid = ?";
    SQLite::Statement dec(db_, moved);
    dec.bind(1, r.receivedMs);
    dec.bind(2, *oldSeries);
    dec.exec();
  }

  SQLite::Statement inst(db_,
      "INSERT INTO instances (sop_instance_uid, series_uid, sop_class_uid, transfer_syntax, instance_number,"
      " image_type, number_of_frames, rows, columns, image_position, image_orientation, pixel_spacing,"
      " slice_thickness, calling_ae, peer_host, received_ms, file_path, file_size, sha256)"
      " VALUES (:sop, :series, :class, :ts, :num, :type, :frames, :rows, :cols, :pos, :ori, :spacing, :thick,"
      " :ae, :host, :now, :path, :size, :sha)"
      " ON CONFLICT(sop_instance_uid) DO UPDATE SET series_uid = excluded.series_uid,"
      " sop_class_uid = excluded.sop_class_uid, transfer_syntax = excluded.transfer_syntax,"
      " instance_number = excluded.instance_number, image_type = excluded.image_type,"
      " number_of_frames = excluded.number_of_frames, rows = excluded.rows, columns = excluded.columns,"
      " image_position = excluded.image_position, image_orientation = excluded.image_orientation,"
      " pixel_spacing = excluded.pixel_spacing, slice_thickness = excluded.slice_thickness,"
      " calling_ae = excluded.calling_ae, peer_host = excluded.peer_host, received_ms = excluded.received_ms,"
      " file_path = excluded.file_path, file_size = excluded.file_size, sha256 = excluded.sha256,"
      " receive_count = receive_count + 1");
  inst.bind(":sop", r.sopInstanceUid);
  inst.bind(":series", r.seriesUid);
  inst.bind(":class", r.sopClassUid);
  inst.bind(":ts", r.transferSyntax);
  bindOptional(inst, ":num", r.instanceNumber);
  bindText(inst, ":type", r.imageType);
  bindOptional(inst, ":frames", r.numberOfFrames);
  bindOptional(inst, ":rows", r.rows);
  bindOptional(inst, ":cols", r.columns);
  bindText(inst, ":pos", r.imagePosition);
  bindText(inst, ":ori", r.imageOrientation);
  bindText(inst, ":spacing", r.pixelSpacing);
  bindText(inst, ":thick", r.sliceThickness);
  bindText(inst, ":ae", r.callingAe);
  bindText(inst, ":host", r.peerHost);
  inst.bind(":now", r.receivedMs);
  inst.bind(":path", r.filePath);
  inst.bind(":size", r.fileSize);
  inst.bind(":sha", r.sha256);
  inst.exec();
  if (!oldPath) return {StoreOutcome::New, {}};
  return {StoreOutcome::Replaced, *oldPath};
}

void Index::recordRefusal(const std::string& ae, const std::string& host, const std::string& sop, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement s(db_, "INSERT INTO refusals (at_ms, calling_ae, peer_host, sop_instance_uid, reason) VALUES (?, ?, ?, ?, ?)");
  s.bind(1, nowMs());
  s.bind(2, ae);
  s.bind(3, host);
  bindText(s, 4, sop);
  s.bind(5, reason);
  s.exec();
}

void Index::recordAssociation(const std::string& ae, const std::string& host, bool accepted, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement s(db_, "INSERT INTO audit (at_ms, event, peer, outcome, detail) VALUES (?, 'association', ?, ?, ?)");
  s.bind(1, nowMs());
  s.bind(2, ae + "@" + host);
  s.bind(3, accepted ? "accepted" : "refused");
  bindText(s, 4, reason);
  s.exec();
}

namespace {
SeriesInfo readSeries(SQLite::Statement& q) {
  return {q.getColumn(0).getString(), stateFromSql<SeriesState>(q.getColumn(1).getString()), q.getColumn(2).getInt64(),
          q.getColumn(3).getInt64(), q.getColumn(4).getInt64()};
}
constexpr const char* kSeriesColumns = "SELECT series_uid, state, last_received_ms, generation, instance_count FROM series";
}  // namespace

std::vector<SeriesInfo> Index::seriesInState(SeriesState state) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kSeriesColumns) + " WHERE state = ?");
  q.bind(1, sqlName(state));
  std::vector<SeriesInfo> out;
  while (q.executeStep()) out.push_back(readSeries(q));
  return out;
}

std::optional<SeriesInfo> Index::series(const std::string& uid) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kSeriesColumns) + " WHERE series_uid = ?");
  q.bind(1, uid);
  if (q.executeStep()) return readSeries(q);
  return std::nullopt;
}

std::optional<SeriesAttributes> Index::seriesAttributes(const std::string& uid) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, "SELECT s.series_uid, COALESCE(s.modality, ''), COALESCE(s.body_part, ''),"
                           " COALESCE(s.series_description, ''), COALESCE(s.sop_class_uid, ''), COALESCE(s.calling_ae, ''),"
                           " (SELECT COALESCE(image_type, '') FROM instances WHERE series_uid = s.series_uid LIMIT 1),"
                           " (SELECT SUM(COALESCE(number_of_frames, 1)) FROM instances WHERE series_uid = s.series_uid),"
                           " (SELECT SUM(COALESCE(number_of_frames, 1) * COALESCE(rows, 0) * COALESCE(columns, 0))"
                           "  FROM instances WHERE series_uid = s.series_uid)"
                           " FROM series s WHERE s.series_uid = ?");
  q.bind(1, uid);
  if (!q.executeStep()) return std::nullopt;
  SeriesAttributes a;
  a.uid = q.getColumn(0).getString();
  a.modality = q.getColumn(1).getString();
  a.bodyPart = q.getColumn(2).getString();
  a.description = q.getColumn(3).getString();
  a.sopClassUid = q.getColumn(4).getString();
  a.callingAe = q.getColumn(5).getString();
  a.imageType = q.getColumn(6).isNull() ? "" : q.getColumn(6).getString();
  a.slices = q.getColumn(7).isNull() ? 0 : q.getColumn(7).getInt64();
  a.voxels = q.getColumn(8).isNull() ? 0 : q.getColumn(8).getInt64();
  return a;
}

bool Index::markReady(const std::string& uid) {
  std::lock_guard<std::mutex> lock(mutex_);
  static const std::string quiet =
      sqlMove("series", transition::kSeriesQuiet, ", generation = generation + 1, ready_ms = ?", "series_uid = ?");
  SQLite::Statement u(db_, quiet);
  u.bind(1, nowMs());
  u.bind(2, uid);
  return u.exec() == 1;
}

std::vector<std::pair<std::string, std::string>> Index::instancePaths() {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, "SELECT i.sop_instance_uid, i.file_path FROM instances i JOIN series s USING (series_uid)"
                           " WHERE s.state != '" + std::string(sqlName(SeriesState::Purged)) + "'");
  std::vector<std::pair<std::string, std::string>> out;
  while (q.executeStep()) out.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getString());
  return out;
}

void Index::removeInstance(const std::string& sop) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement u(db_, "UPDATE series SET instance_count = instance_count - 1 WHERE series_uid ="
                           " (SELECT series_uid FROM instances WHERE sop_instance_uid = ?)");
  u.bind(1, sop);
  u.exec();
  SQLite::Statement d(db_, "DELETE FROM instances WHERE sop_instance_uid = ?");
  d.bind(1, sop);
  d.exec();
  tx.commit();
}

std::vector<std::string> Index::seriesDoneBefore(int64_t cutoffMs) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, "SELECT series_uid FROM series WHERE state = '" + std::string(sqlName(SeriesState::Done)) +
                               "' AND done_ms < ?");
  q.bind(1, cutoffMs);
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

std::vector<std::string> Index::instanceFilesOfSeries(const std::string& uid) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, "SELECT file_path FROM instances WHERE series_uid = ?");
  q.bind(1, uid);
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

void Index::markPurged(const std::string& uid) {
  using transition::kSeriesPurged;
  std::lock_guard<std::mutex> lock(mutex_);
  static const std::string purge = sqlMove("series", kSeriesPurged, "", "series_uid = ?");
  SQLite::Statement u(db_, purge);
  u.bind(1, uid);
  u.exec();
}

}  // namespace segnode::storage

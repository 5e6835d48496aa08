-- Studies, series and instances as received; what routing and DICOM -> volume conversion need.
CREATE TABLE studies (
  study_uid          TEXT PRIMARY KEY,
  patient_id         TEXT,
  patient_name       TEXT,
  study_date         TEXT,
  study_time         TEXT,
  accession_number   TEXT,
  study_description  TEXT,
  first_received_ms  INTEGER NOT NULL,
  last_received_ms   INTEGER NOT NULL
);

-- state: receiving -> ready (quiet for the quiet period) -> processing -> done -> purged
-- (retention). A late instance puts any state but purged back to receiving; generation counts how
-- often the series became ready, so a consumer can tell a changed series from the old one.
CREATE TABLE series (
  series_uid         TEXT PRIMARY KEY,
  study_uid          TEXT NOT NULL REFERENCES studies(study_uid),
  modality           TEXT,
  body_part          TEXT,
  series_description TEXT,
  series_number      INTEGER,
  sop_class_uid      TEXT,
  frame_of_reference TEXT,
  calling_ae         TEXT,
  instance_count     INTEGER NOT NULL DEFAULT 0,
  state              TEXT NOT NULL DEFAULT 'receiving'
                     CHECK (state IN ('receiving', 'ready', 'processing', 'done', 'purged')),
  generation         INTEGER NOT NULL DEFAULT 0,
  first_received_ms  INTEGER NOT NULL,
  last_received_ms   INTEGER NOT NULL,
  ready_ms           INTEGER,
  done_ms            INTEGER
);
CREATE INDEX series_state ON series(state);

CREATE TABLE instances (
  sop_instance_uid   TEXT PRIMARY KEY,
  series_uid         TEXT NOT NULL REFERENCES series(series_uid),
  sop_class_uid      TEXT NOT NULL,
  transfer_syntax    TEXT NOT NULL,
  instance_number    INTEGER,
  image_type         TEXT,
  number_of_frames   INTEGER,
  rows               INTEGER,
  columns            INTEGER,
  image_position     TEXT,
  image_orientation  TEXT,
  pixel_spacing      TEXT,
  slice_thickness    TEXT,
  calling_ae         TEXT,
  peer_host          TEXT,
  received_ms        INTEGER NOT NULL,
  file_path          TEXT NOT NULL,
  file_size          INTEGER NOT NULL,
  sha256             TEXT NOT NULL,
  receive_count      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX instances_series ON instances(series_uid);

-- Everything refused, with the reason the sender was given.
CREATE TABLE refusals (
  id                 INTEGER PRIMARY KEY,
  at_ms              INTEGER NOT NULL,
  calling_ae         TEXT,
  peer_host          TEXT,
  sop_instance_uid   TEXT,
  reason             TEXT NOT NULL
);

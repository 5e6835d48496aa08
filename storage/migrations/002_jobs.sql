-- Processing: one job per (series, generation) that a route matched; one outbox row per
-- destination of a job. UIDs of the output are fixed when the job is created, so a resend is
-- the same instance.
CREATE TABLE jobs (
  id                 INTEGER PRIMARY KEY,
  series_uid         TEXT NOT NULL REFERENCES series(series_uid),
  generation         INTEGER NOT NULL,
  route              TEXT NOT NULL,
  model              TEXT NOT NULL,
  state              TEXT NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'done', 'failed', 'rejected', 'superseded')),
  reason             TEXT,
  seg_series_uid     TEXT NOT NULL,
  seg_sop_uid        TEXT NOT NULL,
  seg_series_number  INTEGER NOT NULL,
  seg_path           TEXT,
  timings            TEXT,
  created_ms         INTEGER NOT NULL,
  started_ms         INTEGER,
  finished_ms        INTEGER
);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_series ON jobs(series_uid);

CREATE TABLE outbox (
  id                 INTEGER PRIMARY KEY,
  job_id             INTEGER NOT NULL REFERENCES jobs(id),
  destination        TEXT NOT NULL,
  state              TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts           INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms    INTEGER NOT NULL,
  last_error         TEXT,
  sent_ms            INTEGER
);
CREATE INDEX outbox_due ON outbox(destination, state, next_attempt_ms);

-- Why a ready series got no job (no route matched), for the administrator.
ALTER TABLE series ADD COLUMN note TEXT;

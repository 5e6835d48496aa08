-- The audit trail (append-only): every association, accepted or refused with the reason, and
-- every attempt to deliver an output, with its result. `segnode audit` prints it. Rows are never
-- updated; retention does not touch them.
CREATE TABLE audit (
  id       INTEGER PRIMARY KEY,
  at_ms    INTEGER NOT NULL,
  event    TEXT NOT NULL CHECK (event IN ('association', 'delivery')),
  peer     TEXT NOT NULL,  -- association: CALLING_AE@address; delivery: the destination's name
  subject  TEXT,           -- delivery: job N, the SEG's SOP Instance UID
  outcome  TEXT NOT NULL CHECK (outcome IN ('accepted', 'refused', 'sent', 'failed', 'dead')),
  detail   TEXT            -- why refused or failed
);
CREATE INDEX audit_time ON audit(at_ms);

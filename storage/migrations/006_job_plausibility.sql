-- Plausibility of a result (issue 16, engine/Plausibility.h): what the route said to do with an
-- implausible one, fixed when the job is made ('reject': record the reason, send nothing;
-- 'send_flagged': send the SEG marked as such; NULL for jobs made before: reject), and what the
-- check measured: the network's confidence (mean top-class probability over labelled voxels) and
-- the verdict with its reasons.
ALTER TABLE jobs ADD COLUMN on_implausible TEXT CHECK (on_implausible IN ('reject', 'send_flagged'));
ALTER TABLE jobs ADD COLUMN confidence REAL;
ALTER TABLE jobs ADD COLUMN plausibility TEXT;

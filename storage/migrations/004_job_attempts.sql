-- How many times a job was claimed by a worker. A job still running when segnoded starts was
-- running when the process ended: after processing.max_job_attempts such attempts it is failed
-- with that reason instead of re-queued, so a series that crashes the worker cannot crash the
-- daemon forever (storage::Jobs::requeueRunning).
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

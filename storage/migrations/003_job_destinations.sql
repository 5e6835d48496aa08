-- A job carries the destinations its route named when the job was made (a JSON array of
-- destination names), so that a config change between routing and running cannot send it
-- elsewhere or nowhere. NULL: a job made before this migration; segnoded fills it from the
-- route of the same name at start (storage::Jobs::fillLegacyDestinations).
ALTER TABLE jobs ADD COLUMN destinations TEXT;

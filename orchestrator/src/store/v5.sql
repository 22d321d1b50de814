-- Version 5: the service instance a task starts (provision, start-source, submit-topology),
-- so that a run's page shows each task's log, live or as kept after teardown.
ALTER TABLE tasks ADD COLUMN instance TEXT;

-- Version 4: what a run could not observe because its backend only simulates workloads
-- (kwok nodes), and what its supervision saw happen to its instances (deaths, restarts).
ALTER TABLE runs ADD COLUMN simulated TEXT;
CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    instance TEXT NOT NULL,
    what TEXT NOT NULL
);
CREATE INDEX run_events_by_run ON run_events (run_id, at);

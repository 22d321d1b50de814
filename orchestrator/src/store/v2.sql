-- Version 2: approvals keyed by (run, task), so that two approvals in parallel branches do
-- not answer each other; runs record the backend and namespace they ran on; states are
-- checked by the database too.
CREATE TABLE approvals (
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    message TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    decision TEXT CHECK (decision IN ('approved', 'rejected')),
    PRIMARY KEY (run_id, task)
);
ALTER TABLE runs DROP COLUMN approval_message;
ALTER TABLE runs DROP COLUMN decision;
ALTER TABLE runs ADD COLUMN backend TEXT NOT NULL DEFAULT 'local';
ALTER TABLE runs ADD COLUMN namespace TEXT;

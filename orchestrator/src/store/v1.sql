-- Version 1: service instances, runs and their tasks.
CREATE TABLE IF NOT EXISTS instances (
    name TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    state TEXT NOT NULL,
    endpoint TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    pid_start_time INTEGER,
    log_path TEXT NOT NULL DEFAULT '',
    dir TEXT NOT NULL,
    params TEXT NOT NULL,
    uses TEXT NOT NULL,
    auto_started_by TEXT,
    owner_pid INTEGER,
    owner_start_time INTEGER,
    run_id TEXT,
    backend TEXT NOT NULL DEFAULT 'local',
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    file TEXT NOT NULL,
    state TEXT NOT NULL,
    variables TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    error TEXT,
    topics TEXT NOT NULL DEFAULT '{}',
    unavailable TEXT NOT NULL DEFAULT '{}',
    approval_message TEXT,
    decision TEXT,
    artifacts TEXT NOT NULL,
    owner_pid INTEGER,
    owner_start_time INTEGER
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    depends TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);

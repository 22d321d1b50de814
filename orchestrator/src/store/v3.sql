-- Version 3: instances Weir started on a Kubernetes cluster, recorded like local ones so that
-- `weir instances` and the web UI list both. The cluster stays the truth of what runs; this
-- is what this machine started there (a namespace holds a run's instances, or standalone ones).
CREATE TABLE cluster_instances (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    endpoint TEXT NOT NULL DEFAULT '',
    run_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);

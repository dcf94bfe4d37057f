CREATE TABLE reconcile_history (
    namespace TEXT NOT NULL,
    started_us BIGINT NOT NULL,
    revision TEXT NOT NULL,
    reason TEXT NOT NULL,
    result TEXT NOT NULL,
    summary TEXT NOT NULL,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    plan_ms BIGINT NOT NULL,
    apply_ms BIGINT NOT NULL,
    PRIMARY KEY (namespace, started_us)
);

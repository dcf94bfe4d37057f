-- Config values: every version kept, so a git revert of config.yaml brings an old one back.
CREATE TABLE config_values (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    value TEXT NOT NULL,
    secret BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, name, version)
);

-- A namespace's API keys: callers of its services that say `auth: key` show one to the
-- public edge. Only a digest of each key is kept; the key is shown once, when made.
CREATE TABLE api_keys (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

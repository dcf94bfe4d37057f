-- The tenant key-value store: the namespace is the database.
CREATE TABLE kv_records (
    namespace TEXT NOT NULL,
    tbl TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, tbl, name)
);

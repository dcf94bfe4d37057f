-- Portable SQL: SQLite, PostgreSQL and CockroachDB all accept this.
CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    namespace TEXT,
    password_hash TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE service_status (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    revision TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    ready BIGINT NOT NULL,
    desired BIGINT NOT NULL,
    message TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE namespace_status (
    namespace TEXT PRIMARY KEY,
    head TEXT NOT NULL,
    applied TEXT,
    error TEXT,
    updated_at BIGINT NOT NULL
);

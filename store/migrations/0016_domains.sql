-- Custom domains: a host a namespace claims for one of its public services. It is
-- served once proven (the ACME HTTP-01 challenge succeeded, or a TXT record
-- `_micro-challenge.<host>` held the token); its certificate and key are files in the
-- data dir, not here. One host belongs to one namespace.
CREATE TABLE domains (
    host TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    service TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    proven_by TEXT,
    cert_expires_at BIGINT,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX domains_by_namespace ON domains (namespace);

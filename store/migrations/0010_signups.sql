-- Sign-ups waiting for their emailed code (and, paid, for payment). `password_hash` is
-- empty for an address that already has an account: it gets a notice, never a code, and
-- the same limits, so the answers never tell who has an account.
CREATE TABLE signups (
    email TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    sends BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Mail the platform would send when it has no SMTP server: admins read it.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Why a namespace is suspended (`billing` or `admin`), or NULL while it runs. What it
-- holds (repo, config, store data) is kept either way.
ALTER TABLE namespaces ADD COLUMN suspended TEXT;
-- A paid namespace's subscription, as Stripe last told it.
CREATE TABLE billing (
    namespace TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    subscription TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    past_due_since BIGINT,
    updated_at BIGINT NOT NULL
);
-- Verified sign-ups waiting for payment. `id` is the Checkout session's client
-- reference; `claim_hash` the digest of the secret the signing-up client holds, to fetch
-- its token once the account is active.
CREATE TABLE pending_signups (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    claim_hash TEXT NOT NULL,
    checkout_session TEXT,
    checkout_url TEXT,
    namespace TEXT,
    created_at BIGINT NOT NULL
);
-- Billing events already applied, by Stripe's event id.
CREATE TABLE billing_events (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

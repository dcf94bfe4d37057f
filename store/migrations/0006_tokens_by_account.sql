-- Revoking an account's tokens (logout everywhere, a service redeployed) looks them up
-- by account: without this, every deployment scanned every token ever minted.
CREATE INDEX tokens_by_account ON tokens (account_id);

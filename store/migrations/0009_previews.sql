-- What a pull request of a linked repo would do, as last previewed.
CREATE TABLE previews (
    namespace TEXT NOT NULL,
    number BIGINT NOT NULL,
    head TEXT NOT NULL,
    summary TEXT NOT NULL,
    result TEXT NOT NULL,
    error TEXT,
    fingerprint TEXT,
    merge_commit TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, number)
);
-- A line a later event adds to a reconcile (say, which pull request it merged).
ALTER TABLE reconcile_history ADD COLUMN note TEXT;

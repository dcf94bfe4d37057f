-- Namespaces deleted from the store whose repo and running services may not be gone
-- yet: written in the deletion's own transaction, dropped once the teardown is done, so a
-- server stopped in between finishes it when it starts again. A name in here cannot be
-- created again until then.
CREATE TABLE namespace_deletions (
    name TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);

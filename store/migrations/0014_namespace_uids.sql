-- The uid (and gid) each namespace's processes run as on a machine of the platform:
-- allocated once per namespace, counting up, and never given out again, not even to a
-- namespace of the same name created after a deletion (its processes, files or kernel
-- keys may outlive it). A deleted namespace's row stays, released.
CREATE TABLE namespace_uids (
    uid BIGINT PRIMARY KEY,
    namespace TEXT NOT NULL,
    released_at BIGINT
);
CREATE UNIQUE INDEX namespace_uids_live ON namespace_uids (namespace) WHERE released_at IS NULL;

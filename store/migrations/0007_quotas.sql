-- What an admin set for one namespace, on top of the server's default quota: a
-- `key=value,...` list the reconciler's quota type parses.
CREATE TABLE quotas (
    namespace TEXT PRIMARY KEY,
    overrides TEXT NOT NULL
);

-- A namespace that follows a branch of a repo on a forge (GitHub, Gitea, GitLab) instead
-- of its platform-hosted repo. The webhook secret and the forge token are sealed.
CREATE TABLE links (
    namespace TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    branch TEXT NOT NULL,
    forge TEXT NOT NULL,
    api TEXT,
    secret TEXT NOT NULL,
    token TEXT,
    created_at BIGINT NOT NULL,
    fetched_revision TEXT,
    fetched_at BIGINT,
    fetch_error TEXT,
    delivery_at BIGINT,
    delivery_event TEXT,
    delivery_result TEXT
);

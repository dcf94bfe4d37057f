-- Who may sign up while sign-up is by invitation (`micro server --signup invite`): an
-- address an admin invited, until it signs up or the invitation is revoked.
CREATE TABLE invites (
    email TEXT PRIMARY KEY,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

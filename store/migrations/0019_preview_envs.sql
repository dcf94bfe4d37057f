-- Preview environments: the namespace (`<parent>-pr-<N>`, `<parent>-br-<branch>`) a
-- pull request's or a branch's head runs in, and where it stands. `state` is `waiting`
-- (more are open than the parent allows), `approval` (a fork's, until someone of the
-- namespace approves it) or `running` (its namespace exists; what its services do is
-- their status). The row goes with the preview's namespace.
CREATE TABLE preview_envs (
    namespace TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    source TEXT NOT NULL,
    number BIGINT,
    head TEXT NOT NULL,
    state TEXT NOT NULL,
    fork BIGINT NOT NULL DEFAULT 0,
    approved BIGINT NOT NULL DEFAULT 0,
    active_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX preview_envs_by_parent ON preview_envs (parent);

-- Which services of a namespace called which (through the platform), so a preview
-- runs what its public services need.
CREATE TABLE service_calls (
    namespace TEXT NOT NULL,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, caller, callee)
);

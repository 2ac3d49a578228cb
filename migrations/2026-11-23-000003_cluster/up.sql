-- Cluster state: nodes, where each CID is placed, leader leases and the maintenance flag.
-- None of these carry tenant data.

CREATE TABLE nodes (
    id              uuid PRIMARY KEY,
    -- `cluster.nodeID`: the operator's free-form name for this node.
    name            text NOT NULL,
    kubo_peer_id    text,
    multiaddrs      text[] NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'active',
    kubo_healthy    boolean NOT NULL DEFAULT false,
    -- Identifies the running process, so a second process with the same name is refused.
    process_id      uuid,
    started_at      timestamptz,
    last_seen       timestamptz,
    cache_stats     jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nodes_state_valid CHECK (state IN ('active', 'draining', 'cordoned'))
);
CREATE UNIQUE INDEX nodes_name_key ON nodes (name);

-- Generations of placements come from one sequence, so a placement removed and placed
-- again never reuses one (job idempotency keys include it).
CREATE SEQUENCE placement_generations;

CREATE TABLE placements (
    cid         text NOT NULL,
    node_id     uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    state       text NOT NULL DEFAULT 'queued',
    attempts    integer NOT NULL DEFAULT 0,
    -- Bumped whenever a job is issued for this placement: a job carrying an older
    -- generation is stale and does nothing, so duplicates are harmless.
    generation  bigint NOT NULL DEFAULT nextval('placement_generations'),
    -- Leader fence that last wrote this placement (0 = written by a request path).
    fence       bigint NOT NULL DEFAULT 0,
    -- The operator had pinned this CID before anchorage did: never pin/rm it.
    preexisting boolean NOT NULL DEFAULT false,
    -- Blocks fetched so far by the running pin/add.
    progress    bigint NOT NULL DEFAULT 0,
    -- A CID pinned on this node to `pin/update` from (replace), so shared blocks stay.
    update_from text,
    -- Why the last attempt failed, for `info`.
    info        text,
    -- A retry waits until then (exponential backoff); the sweeper leaves it alone before.
    not_before  timestamptz,
    -- When a worker first took this placement up (dispatch latency = this - created_at).
    first_attempt_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cid, node_id),
    CONSTRAINT placements_state_valid CHECK (state IN ('queued', 'pinning', 'pinned', 'failed', 'unpinning'))
);
CREATE INDEX placements_node_state_idx ON placements (node_id, state);
CREATE INDEX placements_state_updated_idx ON placements (state, updated_at);

-- Kubo pins anchorage made, per node: written before pin/add, removed after pin/rm. The
-- reconciler removes an owned pin nothing wants (after a grace period) and never touches
-- a pin that is not in this ledger — the operator's own.
CREATE TABLE owned_pins (
    node_id       uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    cid           text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- When the reconciler first saw no placement wanting it.
    orphan_since  timestamptz,
    PRIMARY KEY (node_id, cid)
);

CREATE TABLE leases (
    name        text PRIMARY KEY,
    holder      uuid,
    holder_pid  integer,
    fence       bigint NOT NULL DEFAULT 0,
    expires_at  timestamptz
);

CREATE TABLE cluster_state (
    id                     boolean PRIMARY KEY DEFAULT true,
    maintenance            boolean NOT NULL DEFAULT false,
    maintenance_reason     text,
    maintenance_expires_at timestamptz,
    maintenance_set_by     text,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cluster_state_single_row CHECK (id)
);
INSERT INTO cluster_state (id) VALUES (true);

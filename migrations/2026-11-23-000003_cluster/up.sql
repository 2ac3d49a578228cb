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

CREATE TABLE placements (
    cid         text NOT NULL,
    node_id     uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    state       text NOT NULL DEFAULT 'queued',
    attempts    integer NOT NULL DEFAULT 0,
    -- Leader fence that last wrote this placement (0 = written by a request path).
    fence       bigint NOT NULL DEFAULT 0,
    info        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cid, node_id),
    CONSTRAINT placements_state_valid CHECK (state IN ('queued', 'pinning', 'pinned', 'failed', 'unpinning'))
);
CREATE INDEX placements_node_state_idx ON placements (node_id, state);
CREATE INDEX placements_state_updated_idx ON placements (state, updated_at);

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

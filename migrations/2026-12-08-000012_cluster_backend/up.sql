-- The NATS backend (cluster.backend: nats). Each node records the backend it runs, so a
-- node configured with the other one refuses to join; the leader lease records the
-- JetStream KV revision its fence was taken at (for the audit only: a revision restarts
-- when NATS loses its store, the fence never goes back).
ALTER TABLE nodes ADD COLUMN backend text;
ALTER TABLE nodes ADD CONSTRAINT nodes_backend_valid CHECK (backend IN ('postgres', 'nats'));
ALTER TABLE leases ADD COLUMN kv_revision bigint;

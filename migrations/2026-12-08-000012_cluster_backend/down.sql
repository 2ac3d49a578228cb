ALTER TABLE leases DROP COLUMN kv_revision;
ALTER TABLE nodes DROP CONSTRAINT nodes_backend_valid;
ALTER TABLE nodes DROP COLUMN backend;

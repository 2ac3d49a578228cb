-- After load.sql: the scratch org for pgbench's inserts, and fresh statistics.
\set ON_ERROR_STOP on

-- pgbench's inserts go to their own org, so they never disturb the demo org's
-- `created` sequence, its counts, or what the HTTP runs read.
INSERT INTO orgs (id, name) VALUES (gen_random_uuid(), 'bench-scratch')
ON CONFLICT (name) DO NOTHING;

SET maintenance_work_mem = '256MB';
VACUUM ANALYZE pins;
VACUUM ANALYZE pin_search;
VACUUM ANALYZE pin_counts;
VACUUM ANALYZE cid_refs;
VACUUM ANALYZE orgs;

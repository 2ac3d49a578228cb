-- Informational: POST /v1/pins as the server runs it (role `anchorage`, row-level
-- security, org-scoped transaction): the cid_refs upsert first (the server takes that
-- row lock first), then the insert with created = max(now ms, newest + 1 ms). The
-- server retries an insert that lost the millisecond race (0 rows); pgbench cannot, so
-- run.sh counts the rows that landed. Into the `bench-scratch` org (-D scratch=UUID).
-- The server sends "BEGIN; SELECT set_config(...)" as one round trip; -M prepared needs
-- two, so this slightly understates what Postgres can do for the server.
\set r random(1, 1000000000000)
BEGIN;
SELECT set_config('anchorage.org_id', :scratch, true);
INSERT INTO cid_refs (cid, refcount)
VALUES ('bafkqahyd' || translate(lpad(:r, 16, '0'), '0123456789', 'abcdefghij') || 'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr', 1)
ON CONFLICT (cid) DO UPDATE SET refcount = cid_refs.refcount + 1, updated_at = now()
RETURNING refcount;
INSERT INTO pins (id, org_id, cid, requested_cid, name, origins, meta, status, created)
SELECT gen_random_uuid(), :scratch,
       'bafkqahyd' || translate(lpad(:r, 16, '0'), '0123456789', 'abcdefghij') || 'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr',
       'bafkqahyd' || translate(lpad(:r, 16, '0'), '0123456789', 'abcdefghij') || 'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr',
       'bench-tx-insert', '{}', '{}', 'queued',
       GREATEST(date_trunc('milliseconds', clock_timestamp()),
                (SELECT max(created) + interval '1 millisecond' FROM pins WHERE org_id = :scratch))
ON CONFLICT (org_id, created) DO NOTHING
RETURNING id, cid, requested_cid, name, origins, meta, status, info, created;
COMMIT;

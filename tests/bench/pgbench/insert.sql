-- Raw ceiling for POST /v1/pins: one single-row INSERT into pins, autocommit, as the
-- superuser (no row-level security, no transaction around it). Same columns, indexes
-- and ON CONFLICT/RETURNING as the server's statement, but `created` is a random
-- millisecond in 1970–2001 instead of "now, or one past the org's newest", so 32
-- clients never collide and no lookup of max(created) is needed.
-- Rows go to the `bench-scratch` org (-D scratch=UUID) so the demo org is untouched.
-- Run with -M prepared; the CID prefix "bafkqahyd" is the CID scheme of load.sql with
-- first payload byte 03.
\set r random(1, 1000000000000)
INSERT INTO pins (id, org_id, cid, requested_cid, name, origins, meta, status, created)
VALUES (gen_random_uuid(), :scratch,
        'bafkqahyd' || translate(lpad(:r, 16, '0'), '0123456789', 'abcdefghij') || 'qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq',
        'bafkqahyd' || translate(lpad(:r, 16, '0'), '0123456789', 'abcdefghij') || 'qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq',
        'bench-raw-insert', '{}', '{}', 'queued',
        timestamptz 'epoch' + :r::bigint * interval '1 millisecond')
ON CONFLICT (org_id, created) DO NOTHING
RETURNING id, cid, requested_cid, name, origins, meta, status, info, created;

-- Informational: GET /v1/pins?limit=10 as the server runs it — the server's role
-- (`anchorage`, under row-level security) in an org-scoped transaction: BEGIN,
-- set_config, count, page, COMMIT. The gap to list.sql is RLS + round trips.
-- (The server sends "BEGIN; SELECT set_config(...)" as one round trip; -M prepared
-- needs two, so this slightly understates what Postgres can do for the server.)
BEGIN;
SELECT set_config('anchorage.org_id', :org, true);
SELECT COALESCE(sum(n), 0)::bigint AS n FROM pin_counts WHERE org_id = :org AND status = ANY(:statuses);
SELECT id, cid, requested_cid, name, origins, meta, status, info, created
FROM pins
WHERE org_id = :org AND status = :status
ORDER BY created DESC
LIMIT 10;
COMMIT;

-- Raw ceiling for GET /v1/pins?limit=10: the two statements the server issues for a
-- bare listing (status defaults to pinned) — the total from the pin_counts ledger,
-- then the page by (org_id, status, created) — autocommit, as the superuser.
-- Mirrors count_statement/page_statement in src/pins/store.rs; keep them in step.
-- -D org=UUID -D status=pinned -D statuses={pinned}; run with -M prepared.
SELECT COALESCE(sum(n), 0)::bigint AS n FROM pin_counts WHERE org_id = :org AND status = ANY(:statuses);
SELECT id, cid, requested_cid, name, origins, meta, status, info, created
FROM pins
WHERE org_id = :org AND status = :status
ORDER BY created DESC
LIMIT 10;

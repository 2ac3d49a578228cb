-- Informational: only the page of GET /v1/pins?limit=10 (no count), as the superuser.
-- Shows how much of the listing's cost is the `count` the spec's response carries.
SELECT id, cid, requested_cid, name, origins, meta, status, info, created
FROM pins
WHERE org_id = :org AND status = ANY(:statuses)
ORDER BY created DESC, id DESC
LIMIT 10;

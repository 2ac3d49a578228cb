-- Informational: only the page of GET /v1/pins?limit=10, without the count, as the
-- superuser — the plain "limit 10 by created desc for the org and status" select.
SELECT id, cid, requested_cid, name, origins, meta, status, info, created
FROM pins
WHERE org_id = :org AND status = :status
ORDER BY created DESC
LIMIT 10;

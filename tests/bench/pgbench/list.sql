-- Raw ceiling for GET /v1/pins?limit=10: the two statements the server issues for a
-- bare listing (status defaults to pinned), count then page, autocommit, as the
-- superuser. -D org=UUID -D statuses={pinned}; run with -M prepared.
SELECT count(*) FROM pins WHERE org_id = :org AND status = ANY(:statuses);
SELECT id, cid, requested_cid, name, origins, meta, status, info, created
FROM pins
WHERE org_id = :org AND status = ANY(:statuses)
ORDER BY created DESC, id DESC
LIMIT 10;

-- Raw ceiling for GET /v1/pins/{requestid}: a primary-key select of a random loaded
-- pin, as the superuser. load.sql derives pin i's id from (base_ms - i, i), so the id
-- is rebuilt here from a random i instead of being looked up. -D org, base_ms, n.
\set i random(1, :n)
SELECT id, cid, requested_cid, name, origins, meta, status, info, created
FROM pins
WHERE org_id = :org
  AND id = (lpad(to_hex(:base_ms::bigint - :i::bigint), 12, '0')
            || '70008' || lpad(to_hex(:i::bigint), 15, '0'))::uuid
LIMIT 1;

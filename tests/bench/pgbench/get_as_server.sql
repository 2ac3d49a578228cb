-- Informational: GET /v1/pins/{requestid} as the server runs it (role `anchorage`,
-- row-level security, org-scoped transaction). See get.sql for the id scheme.
\set i random(1, :n)
-- (The server sends "BEGIN; SELECT set_config(...)" as one round trip; -M prepared
-- needs two, so this slightly understates what Postgres can do for the server.)
BEGIN;
SELECT set_config('anchorage.org_id', :org, true);
SELECT id, cid, requested_cid, name, origins, meta, status, info, created
FROM pins
WHERE org_id = :org
  AND id = (lpad(to_hex(:base_ms::bigint - :i::bigint), 12, '0')
            || '70008' || lpad(to_hex(:i::bigint), 15, '0'))::uuid
LIMIT 1;
COMMIT;

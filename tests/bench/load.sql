-- Loads pins :first..:last into the `demo` org of an `anchorage dev` stack, as the
-- superuser (which bypasses row-level security). run.sh calls it in chunks of 100 000
-- (the pin_search and pin_counts triggers see one chunk's transition table at a time),
-- then runs load_finish.sql.
--
--   psql -v first=1 -v last=100000 -v base='2026-11-23 15:00:00.123+00' -f tests/bench/load.sql
--
-- Pin i is created at base - i ms, so `created` is distinct and millisecond-exact
-- (pins_created_ms), and pin 1 is the newest. Everything else is derived from i, so the
-- pgbench scripts can name a row without a lookup table:
--   id   UUIDv7-shaped: 48-bit ms timestamp | 7000 | 8 | i as 15 hex digits
--   cid  a valid CIDv1 (raw, identity multihash of 31 bytes) in canonical base32:
--        'bafkqahyb' is the base32 of the 5 header bytes 01 55 00 1f 01 (version, raw
--        codec, identity, length 31, first payload byte). Because the header is exactly
--        one 5-byte base32 group, any 48 characters of [a-z2-7] after it encode the
--        other 30 payload bytes, so translate() of digits / hex digits into letters
--        gives distinct, valid CIDs with no base32 encoder in SQL.
--   name a spread of file-like names (5% NULL) so `?name=invoice&match=ipartial`
--        finds ~10%
--   status 10% queued, 90% pinned
\set ON_ERROR_STOP on

SELECT id AS org FROM orgs WHERE name = 'demo' \gset

-- A bulk load of a throwaway database: skip waiting for WAL flushes.
SET synchronous_commit = off;

-- Pins and their cid_refs in one statement (the pins triggers fill pin_search and
-- pin_counts from the statement's transition table).
WITH loaded AS (
    INSERT INTO pins (id, org_id, cid, requested_cid, name, origins, meta, status, info, created, updated_at)
    SELECT
        (lpad(to_hex((extract(epoch FROM created) * 1000)::bigint), 12, '0')
            || '70008' || lpad(to_hex(i), 15, '0'))::uuid,
        :'org',
        cid,
        cid,
        CASE WHEN i % 20 = 7 THEN NULL ELSE
            (ARRAY['Invoice', 'report', 'photo', 'Backup', 'dataset',
                   'video', 'notes', 'album', 'website', 'paper'])[1 + i % 10]
            || '-' || (2015 + i % 11) || '-' || lpad((i % 1000)::text, 3, '0')
            || (ARRAY['.pdf', '.jpg', '.tar.gz', '.json', '.mp4',
                      '.md', '.car', '.zip', '.png', '.csv'])[1 + (i / 10) % 10]
        END,
        '{}',
        jsonb_build_object('app', 'bench', 'batch', (i / 1000)::text),
        CASE WHEN i % 10 = 3 THEN 'queued' ELSE 'pinned' END,
        CASE WHEN i % 10 = 3 THEN '{}'::jsonb ELSE '{"replicas": "1/1"}'::jsonb END,
        created,
        created
    FROM (
        SELECT i,
               :'base'::timestamptz - i * interval '1 millisecond' AS created,
               'bafkqahyb'
                   || translate(lpad(i::text, 16, '0'), '0123456789', 'abcdefghij')
                   || translate(md5(i::text), '0123456789abcdef', 'abcdefghijklmnop') AS cid
        FROM generate_series(:first, :last) AS i
    ) AS g
    RETURNING cid
)
-- One live request per CID (what POST would have left behind).
INSERT INTO cid_refs (cid, refcount)
SELECT cid, count(*) FROM loaded GROUP BY cid
ON CONFLICT (cid) DO UPDATE SET refcount = cid_refs.refcount + EXCLUDED.refcount;

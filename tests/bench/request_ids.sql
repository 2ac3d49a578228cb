-- Prints 1000 random request ids of the demo org as the API spells them: TypeIDs,
-- 'pin_' + the 128-bit uuid as 26 Crockford base32 characters (lower case), read 5
-- bits at a time from the uuid with two zero bits in front (26 * 5 = 130).
--   psql -At -v org=UUID -f tests/bench/request_ids.sql
SELECT 'pin_' || string_agg(
           substr('0123456789abcdefghjkmnpqrstvwxyz',
                  substring(bits FROM k * 5 + 1 FOR 5)::bit(5)::int + 1, 1),
           '' ORDER BY k)
FROM (
    SELECT B'00' || ('x' || replace(id::text, '-', ''))::bit(128) AS bits
    FROM pins
    WHERE org_id = :'org'
    ORDER BY random()
    LIMIT 1000
) AS sample
CROSS JOIN generate_series(0, 25) AS k
GROUP BY bits;

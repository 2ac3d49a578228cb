-- Listing a million pins stays index-backed — under row-level security.
--
-- RLS makes Postgres evaluate the policy before any user condition that is not
-- LEAKPROOF, and such a condition can then never be an index condition. LIKE, ILIKE,
-- lower() and jsonb @> are not leakproof (only plain comparisons are), so trigram or
-- jsonb GIN indexes on `pins` would never be used by the server's role. Searches
-- therefore go through `pin_search`: per pin, one row per search term — a hash of the
-- exact name, of the lower-cased name, of each distinct lower-cased 3-gram of the name,
-- and of each meta key/value pair — found by plain bigint equality (leakproof, so
-- index-backed) and rechecked against the pin row itself, which makes hash collisions
-- harmless. Patterns shorter than 3 characters have no 3-gram and scan the org.
--
-- Per-org, per-status counts for `limit=1&status=…` come from `pin_counts` (below).

-- Search terms of a name, as used both when indexing and when searching.
CREATE FUNCTION anchorage_name_terms(name text) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(
        SELECT DISTINCT hashtextextended('g:' || substr(lower(name), i, 3), 0)
        FROM generate_series(1, char_length(name) - 2) AS i
    )
$$;

CREATE FUNCTION anchorage_exact_term(name text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashtextextended('e:' || name, 0) $$;

CREATE FUNCTION anchorage_iexact_term(name text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashtextextended('i:' || lower(name), 0) $$;

CREATE FUNCTION anchorage_meta_terms(meta jsonb) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(
        SELECT DISTINCT hashtextextended('m:' || key || E'\x1f' || value, 0)
        FROM jsonb_each_text(meta)
    )
$$;

CREATE TABLE pin_search (
    org_id  uuid NOT NULL,
    term    bigint NOT NULL,
    pin_id  uuid NOT NULL,
    PRIMARY KEY (org_id, term, pin_id)
);
CREATE INDEX pin_search_pin_idx ON pin_search (pin_id);

ALTER TABLE pin_search ENABLE ROW LEVEL SECURITY;
ALTER TABLE pin_search FORCE ROW LEVEL SECURITY;
CREATE POLICY pin_search_tenant ON pin_search
    USING (org_id = anchorage_current_org() OR anchorage_is_system())
    WITH CHECK (org_id = anchorage_current_org() OR anchorage_is_system());

-- Every search term of one pin.
CREATE FUNCTION anchorage_pin_terms(name text, meta jsonb) RETURNS SETOF bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT anchorage_exact_term(name) WHERE name IS NOT NULL
    UNION
    SELECT anchorage_iexact_term(name) WHERE name IS NOT NULL
    UNION
    SELECT unnest(anchorage_name_terms(name)) WHERE name IS NOT NULL
    UNION
    SELECT unnest(anchorage_meta_terms(meta))
$$;

CREATE FUNCTION pin_search_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pin_search (org_id, term, pin_id)
    SELECT n.org_id, t, n.id FROM new_rows n, anchorage_pin_terms(n.name, n.meta) AS t;
    RETURN NULL;
END $$;

CREATE FUNCTION pin_search_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM pin_search WHERE pin_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

-- name and meta never change on a pin row (replace makes a new row), so no UPDATE trigger.
CREATE TRIGGER pins_search_insert AFTER INSERT ON pins
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pin_search_on_insert();
CREATE TRIGGER pins_search_delete AFTER DELETE ON pins
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pin_search_on_delete();

-- Per-org, per-status pin counts as an append-only ledger: each statement that writes
-- pins appends one delta row per (org, status) it changed, and a periodic compaction
-- (`pins::counts::compact`) folds the ledger into one row per (org, status). Appending
-- takes no lock on existing rows, so concurrent writers never wait on or deadlock over a
-- counter; a count is the sum of the folded row and the few deltas since, read through
-- the (org_id, status) index, and exact because every delta commits or rolls back with
-- the write that caused it.
CREATE TABLE pin_counts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id  uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    status  text NOT NULL,
    n       bigint NOT NULL
);
CREATE INDEX pin_counts_org_status_idx ON pin_counts (org_id, status) INCLUDE (n);

ALTER TABLE pin_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pin_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY pin_counts_tenant ON pin_counts
    USING (org_id = anchorage_current_org() OR anchorage_is_system())
    WITH CHECK (org_id = anchorage_current_org() OR anchorage_is_system());

CREATE FUNCTION pin_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pin_counts (org_id, status, n)
    SELECT org_id, status, count(*) FROM new_rows GROUP BY org_id, status;
    RETURN NULL;
END $$;

CREATE FUNCTION pin_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pin_counts (org_id, status, n)
    SELECT org_id, status, -count(*) FROM old_rows GROUP BY org_id, status;
    RETURN NULL;
END $$;

CREATE FUNCTION pin_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pin_counts (org_id, status, n)
    SELECT org_id, status, sum(d) FROM (
        SELECT org_id, status, -1 AS d FROM old_rows
        UNION ALL
        SELECT org_id, status, 1 AS d FROM new_rows
    ) x
    GROUP BY org_id, status
    HAVING sum(d) <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER pins_count_insert AFTER INSERT ON pins
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pin_counts_on_insert();
CREATE TRIGGER pins_count_delete AFTER DELETE ON pins
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pin_counts_on_delete();
CREATE TRIGGER pins_count_update AFTER UPDATE ON pins
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pin_counts_on_update();

-- Existing rows (none on a fresh install, but migrations must be correct on any data).
SELECT set_config('anchorage.system', 'on', true);
INSERT INTO pin_counts (org_id, status, n)
SELECT org_id, status, count(*) FROM pins GROUP BY org_id, status;
INSERT INTO pin_search (org_id, term, pin_id)
SELECT p.org_id, t, p.id FROM pins p, anchorage_pin_terms(p.name, p.meta) AS t;

-- Pin requests (one row per request, tenant data) and the tenant-free views of CIDs
-- that cluster code works from.

CREATE TABLE pins (
    -- The pin request id (a TypeID at the edge).
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- Normalised (CIDv1, base32) so that every form of one CID matches and shares one
    -- Kubo pin; `requested_cid` keeps the text the client sent, which responses echo.
    cid         text NOT NULL,
    requested_cid text NOT NULL,
    name        text,
    origins     text[] NOT NULL DEFAULT '{}',
    meta        jsonb NOT NULL DEFAULT '{}',
    -- Derived from the CID's placements and kept in step with them, so that listing and
    -- counting by status stay index-backed. Only the four spec values.
    status      text NOT NULL DEFAULT 'queued',
    info        jsonb NOT NULL DEFAULT '{}',
    -- Millisecond precision, unique within an org, so `before`/`after` paging is exact.
    created     timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pins_status_valid CHECK (status IN ('queued', 'pinning', 'pinned', 'failed')),
    CONSTRAINT pins_created_ms CHECK (created = date_trunc('milliseconds', created)),
    CONSTRAINT pins_name_len CHECK (name IS NULL OR char_length(name) <= 255),
    CONSTRAINT pins_meta_object CHECK (jsonb_typeof(meta) = 'object')
);
-- Unique per org: `created` doubles as the paging cursor (`before`/`after`).
CREATE UNIQUE INDEX pins_org_created_key ON pins (org_id, created);
CREATE INDEX pins_org_status_created_idx ON pins (org_id, status, created DESC);
-- By CID across orgs: status fan-out to every org's pin of a CID, and the `cid` filter
-- (a CID is selective enough that org_id need not lead).
CREATE INDEX pins_cid_idx ON pins (cid);

ALTER TABLE pins ENABLE ROW LEVEL SECURITY;
ALTER TABLE pins FORCE ROW LEVEL SECURITY;
CREATE POLICY pins_tenant ON pins
    USING (org_id = anchorage_current_org() OR anchorage_is_system())
    WITH CHECK (org_id = anchorage_current_org() OR anchorage_is_system());

-- How many live pin requests, across all orgs, want a CID. No tenant data.
CREATE TABLE cid_refs (
    cid         text PRIMARY KEY,
    refcount    integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cid_refs_refcount_nonnegative CHECK (refcount >= 0)
);

-- Origins (multiaddrs) to dial when fetching a CID, merged over all requests. No tenant data.
CREATE TABLE cid_origins (
    cid       text NOT NULL,
    origin    text NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cid, origin)
);

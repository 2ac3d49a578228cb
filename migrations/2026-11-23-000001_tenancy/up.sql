-- Tenancy: organisations, users, memberships, API token metadata and the token denylist.
--
-- Row-level security: every table that carries tenant data has ENABLE + FORCE ROW LEVEL
-- SECURITY and a policy that admits a row when its org matches the transaction's
-- `anchorage.org_id` setting, or when the transaction set `anchorage.system` (cluster,
-- job, login and admin code paths). A transaction that sets neither sees no tenant rows.

-- Both helpers read transaction-local settings; `true` = missing setting yields NULL.
CREATE FUNCTION anchorage_current_org() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('anchorage.org_id', true), '')::uuid $$;

CREATE FUNCTION anchorage_is_system() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT COALESCE(current_setting('anchorage.system', true), '') = 'on' $$;

CREATE TABLE orgs (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orgs_name_valid CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$')
);
CREATE UNIQUE INDEX orgs_name_key ON orgs (name);

ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY orgs_tenant ON orgs
    USING (id = anchorage_current_org() OR anchorage_is_system())
    WITH CHECK (id = anchorage_current_org() OR anchorage_is_system());

-- Users are people (OIDC subjects) or service principals named in CLI-minted tokens.
-- A user may belong to several orgs, so this table carries no tenant data of its own.
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    oidc_subject   text,
    email          text,
    display_name   text,
    is_sysadmin    boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);
CREATE UNIQUE INDEX users_oidc_subject_key ON users (oidc_subject) WHERE oidc_subject IS NOT NULL;
CREATE INDEX users_email_idx ON users (lower(email));

CREATE TABLE memberships (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- NULL while pending: an org admin invited `email`, who has not signed in yet.
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    email       text,
    role        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT memberships_role_valid CHECK (role IN ('orgadmin', 'member')),
    CONSTRAINT memberships_user_or_email CHECK (user_id IS NOT NULL OR email IS NOT NULL)
);
CREATE UNIQUE INDEX memberships_org_user_key ON memberships (org_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX memberships_org_email_key ON memberships (org_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX memberships_user_idx ON memberships (user_id);

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY memberships_tenant ON memberships
    USING (org_id = anchorage_current_org() OR anchorage_is_system())
    WITH CHECK (org_id = anchorage_current_org() OR anchorage_is_system());

-- Metadata of minted API tokens. The signed JWT itself is never stored.
CREATE TABLE api_tokens (
    jti         uuid PRIMARY KEY,
    -- NULL for cluster-wide sysadmin tokens; such rows are visible to system transactions only.
    org_id      uuid REFERENCES orgs (id) ON DELETE CASCADE,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    -- The token's `sub` claim (a user id, or a service name for CLI-minted tokens).
    subject     text NOT NULL,
    label       text NOT NULL DEFAULT '',
    role        text NOT NULL,
    scopes      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT api_tokens_role_valid CHECK (role IN ('sysadmin', 'orgadmin', 'member'))
);
CREATE INDEX api_tokens_org_idx ON api_tokens (org_id, created_at DESC);
CREATE INDEX api_tokens_subject_idx ON api_tokens (org_id, subject, created_at DESC);

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY api_tokens_tenant ON api_tokens
    USING (org_id = anchorage_current_org() OR anchorage_is_system())
    WITH CHECK (org_id = anchorage_current_org() OR anchorage_is_system());

-- Revoked token ids until their natural expiry; no tenant data, read on every auth via a cache.
CREATE TABLE token_denylist (
    jti         uuid PRIMARY KEY,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX token_denylist_expires_idx ON token_denylist (expires_at);

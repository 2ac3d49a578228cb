-- Browser sign-in. Neither table carries tenant data (a user may belong to many orgs).

-- An OIDC authorization request in flight: created by GET /v1/auth/login, consumed once
-- by POST /v1/auth/session on any node. Holds the PKCE verifier, so rows live minutes.
CREATE TABLE login_attempts (
    state          text PRIMARY KEY,
    nonce          text NOT NULL,
    pkce_verifier  text NOT NULL,
    return_to      text NOT NULL DEFAULT '/',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_created_idx ON login_attempts (created_at);

-- A signed-in browser. The cookie carries a random secret; only its SHA-256 is stored,
-- so the table alone cannot be used to sign in.
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    secret_hash  bytea NOT NULL UNIQUE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Security review, part 1 (docs/security.md).

-- A sign-in attempt completes only in the browser that started it: that browser holds
-- a secret in a short-lived cookie, and only its SHA-256 is kept with the attempt.
-- Attempts in flight are minutes old and cannot be bound after the fact.
DELETE FROM login_attempts;
ALTER TABLE login_attempts ADD COLUMN browser_hash bytea NOT NULL;

-- A session opened with an API token acts with exactly that token's claims, and ends
-- when the token is revoked.
ALTER TABLE sessions ADD COLUMN token_jti uuid;
ALTER TABLE sessions ADD COLUMN token_claims jsonb;
ALTER TABLE sessions ADD CONSTRAINT sessions_token_claims_with_jti
    CHECK ((token_jti IS NULL) = (token_claims IS NULL));
CREATE INDEX sessions_token_idx ON sessions (token_jti) WHERE token_jti IS NOT NULL;

-- A token minted by a token records its parent: it never outlives it, and revoking the
-- parent revokes it too.
ALTER TABLE api_tokens ADD COLUMN parent_jti uuid;
CREATE INDEX api_tokens_parent_idx ON api_tokens (parent_jti) WHERE parent_jti IS NOT NULL;

-- bootstrap.sysadmins makes a sysadmin once per listed email (matched exactly, as the
-- seed documents): of the first identity that signs in with it. Emails of sysadmins
-- who have signed in already count as used.
CREATE TABLE bootstrap_claims (
    email       text PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bootstrap_claims (email, user_id)
SELECT DISTINCT ON (email) email, id
FROM users
WHERE is_sysadmin AND email IS NOT NULL AND oidc_subject IS NOT NULL
ORDER BY email, created_at;

DROP TABLE bootstrap_claims;
DROP INDEX api_tokens_parent_idx;
ALTER TABLE api_tokens DROP COLUMN parent_jti;
DROP INDEX sessions_token_idx;
ALTER TABLE sessions DROP CONSTRAINT sessions_token_claims_with_jti;
ALTER TABLE sessions DROP COLUMN token_claims;
ALTER TABLE sessions DROP COLUMN token_jti;
ALTER TABLE login_attempts DROP COLUMN browser_hash;

-- Revoking every token of a signing key at once (a suspected key compromise):
-- `anchorage admin revoke-token --kid <id>` records a cutoff, and tokens of that kid
-- issued at or before it are refused. Kept until no such token can still be valid.
CREATE TABLE key_cutoffs (
    kid         text PRIMARY KEY,
    cutoff      timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

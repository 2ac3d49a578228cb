-- Replicated placement: a placement on a node that died is *replaced* by one on another
-- node rather than removed, so a node that comes back still has its copy until the
-- replacement is pinned; then the leader trims it.
ALTER TABLE placements ADD COLUMN replaced_at timestamptz;
CREATE INDEX placements_replaced_idx ON placements (node_id) WHERE replaced_at IS NOT NULL;

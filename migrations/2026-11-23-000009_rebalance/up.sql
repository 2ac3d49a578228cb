-- An operator asked for a rebalance: the leader applies the plan round by round until
-- it is empty, then clears this.
ALTER TABLE cluster_state ADD COLUMN rebalance_requested_at timestamptz;
ALTER TABLE cluster_state ADD COLUMN rebalance_requested_by text;

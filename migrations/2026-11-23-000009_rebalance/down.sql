ALTER TABLE cluster_state DROP COLUMN rebalance_requested_by;
ALTER TABLE cluster_state DROP COLUMN rebalance_requested_at;

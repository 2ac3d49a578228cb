DROP INDEX placements_replaced_idx;
ALTER TABLE placements DROP COLUMN replaced_at;

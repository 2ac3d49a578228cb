DROP TABLE cluster_state;
DROP TABLE leases;
DROP TABLE placements;
DROP TABLE nodes;

DROP TABLE cluster_state;
DROP TABLE leases;
DROP TABLE owned_pins;
DROP TABLE placements;
DROP SEQUENCE placement_generations;
DROP TABLE nodes;

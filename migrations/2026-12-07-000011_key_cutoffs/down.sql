DROP TABLE key_cutoffs;

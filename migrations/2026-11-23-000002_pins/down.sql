DROP TABLE cid_origins;
DROP TABLE cid_refs;
DROP TABLE pins;

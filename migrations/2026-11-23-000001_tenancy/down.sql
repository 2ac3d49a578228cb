DROP TABLE token_denylist;
DROP TABLE api_tokens;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE orgs;
DROP FUNCTION anchorage_is_system();
DROP FUNCTION anchorage_current_org();

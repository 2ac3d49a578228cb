-- A fixed GET: the path and query come from the URL given to wrk (e.g. /v1/pins?limit=10).
-- No request() function, so wrk sends one pre-built request with no Lua per request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

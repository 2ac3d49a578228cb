-- POST /v1/pins with a fresh, valid CID on every request.
--
-- The CID is CIDv1, raw codec, identity multihash of 31 bytes, in base32 ('b' prefix).
-- Its first 5 bytes, 01 55 00 1f 02 (version, raw, identity, length 31, first payload
-- byte), are exactly one base32 group and encode as "afkqahyc"; any 48 characters of
-- [a-z2-7] after that are the other 30 payload bytes. So digits mapped to letters give
-- a valid CID without a base32 encoder in Lua (tests/bench/load.sql uses the same
-- trick with first payload byte 01, "bafkqahyb…", so the two sets never collide).
-- Uniqueness: run id (13 digits) + thread (3) + per-thread counter (16).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local function letters(digits)
  return (string.gsub(digits, "%d", function(d) return string.char(97 + tonumber(d)) end))
end

local run_id = tonumber(os.getenv("BENCH_RUN_ID") or "0")
local prefix
local counter = 0

function init(args)
  prefix = "bafkqahyc" .. letters(string.format("%013d%03d", run_id, tid))
end

function request()
  counter = counter + 1
  local cid = prefix .. letters(string.format("%016d", counter)) .. "qqqqqqqqqqqqqqqq"
  local body = string.format('{"cid":"%s","name":"bench-post-%d-%d"}', cid, tid, counter)
  return wrk.format(nil, nil, nil, body)
end

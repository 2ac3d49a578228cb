-- GET /v1/pins/{requestid} for real request ids of the demo org, picked at random from
-- BENCH_IDS_FILE (one pin_… TypeID a line). The URL given to wrk ends in /v1/pins/.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids = {}

function init(args)
  local file = os.getenv("BENCH_IDS_FILE")
  for line in io.lines(file) do
    if line ~= "" then ids[#ids + 1] = line end
  end
  if #ids == 0 then error("no request ids in " .. tostring(file)) end
  math.randomseed(os.time() + tid * 7919)
end

function request()
  return wrk.format(nil, wrk.path .. ids[math.random(#ids)])
end

-- Shared by every wrk script (loaded with dofile): sends the bearer token, counts
-- non-2xx responses per thread, and prints one machine-readable summary from done().
--
-- wrk runs one Lua state per thread plus one for setup()/done(); counters live in the
-- thread states and done() collects them through the thread handles setup() kept.

local token = os.getenv("ANCHORAGE_TOKEN")
if token == nil or token == "" then
  error("ANCHORAGE_TOKEN is not set")
end
wrk.headers["Authorization"] = "Bearer " .. token

local threads = {}

function setup(thread)
  -- A small per-thread number, visible as the global `tid` in init()/request().
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

-- Per-thread state (globals, so thread:get can read them).
non2xx = 0
codes = {}
first_error = ""

-- wrk itself only counts status > 399; a benchmark must also notice 1xx/3xx and keep
-- one example body so the report can say what went wrong.
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    codes[key] = (codes[key] or 0) + 1
    if first_error == "" then
      first_error = key .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local bad, by_code, sample = 0, {}, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    for code, n in pairs(t:get("codes")) do
      by_code[code] = (by_code[code] or 0) + n
    end
    if sample == "" then sample = t:get("first_error") end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  -- Latencies from wrk are in microseconds.
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d timeouts=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    bad, e.connect + e.read + e.write, e.timeout))
  local parts = {}
  for code, n in pairs(by_code) do table.insert(parts, code .. "x" .. n) end
  table.sort(parts)
  io.write("BENCH_CODES " .. table.concat(parts, ",") .. "\n")
  io.write("BENCH_SAMPLE " .. (string.gsub(sample, "[\r\n\t]", " ")) .. "\n")
end

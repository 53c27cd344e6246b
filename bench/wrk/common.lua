-- Shared by the bench scripts (loaded with dofile by each of them).
--
-- BENCH_TARGETS names a file of requests, one per line, tab-separated:
--   METHOD  PATH  BEARER  ENTITY_ID  BODY        ("-" for none)
-- Each wrk thread takes every n-th line (BENCH_THREADS threads) and rotates over them, so
-- consecutive requests go to different entities. BENCH_OUT receives a JSON summary.

local common = {}

local version = os.getenv("BENCH_MONITE_VERSION") or "2024-05-25"
local host = os.getenv("BENCH_HOST") or "127.0.0.1"
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")

local function split(line)
   local fields = {}
   for field in (line .. "\t"):gmatch("([^\t]*)\t") do
      fields[#fields + 1] = field
   end
   return fields
end

-- The headers of one target: version always, bearer and entity when given.
function common.headers(bearer, entity, body)
   local headers = { ["Host"] = host, ["x-monite-version"] = version }
   if bearer ~= "-" then headers["Authorization"] = "Bearer " .. bearer end
   if entity ~= "-" then headers["x-monite-entity-id"] = entity end
   if body then headers["Content-Type"] = "application/json" end
   return headers
end

-- This thread's share of the targets: {method, path, bearer, entity, body}.
function common.targets(thread_id)
   local mine, i = {}, 0
   for line in io.lines(os.getenv("BENCH_TARGETS")) do
      if line ~= "" then
         if i % threads == thread_id then
            local f = split(line)
            mine[#mine + 1] = {
               method = f[1], path = f[2], bearer = f[3], entity = f[4],
               body = f[5] ~= "-" and f[5] or nil,
            }
         end
         i = i + 1
      end
   end
   if #mine == 0 then error("no targets for thread " .. thread_id) end
   return mine
end

function common.format(t, path)
   return wrk.format(t.method, path or t.path, common.headers(t.bearer, t.entity, t.body), t.body)
end

local next_id = 0
local threads = {}
function common.setup(thread)
   thread:set("thread_id", next_id)
   next_id = next_id + 1
end

-- As common.setup, keeping the thread so done() can read its first_us and last_us.
function common.setup_keep(thread)
   common.setup(thread)
   threads[#threads + 1] = thread
end

local ffi = require("ffi")
ffi.cdef[[
   typedef struct { long tv_sec; long tv_usec; } bench_timeval;
   int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")

-- Wall-clock microseconds.
function common.now_us()
   ffi.C.gettimeofday(tv, nil)
   return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

-- The time the kept threads were active: first request of any to last answer of any.
local function active_us()
   local first, last = nil, 0
   for _, t in ipairs(threads) do
      local f, l = t:get("first_us"), t:get("last_us")
      if f and f > 0 and (first == nil or f < first) then first = f end
      if l and l > last then last = l end
   end
   if first == nil or last <= first then return 0 end
   return last - first
end

function common.done(summary, latency)
   local e = summary.errors
   local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
   out:write(string.format(
      '{"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"active_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "stdev": %.1f, "p50": %d, "p90": %d, "p99": %d, ' ..
      '"max": %d}}\n',
      summary.duration, summary.requests, summary.bytes, active_us(),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
   out:close()
end

return common

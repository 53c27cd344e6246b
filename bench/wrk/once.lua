-- Sends each target once (a write that can be made only once: a batch of receivables to
-- finance, a prepared request to confirm), then stops the thread. Records when it sent its
-- first request and got its last answer (gettimeofday through LuaJIT's ffi), so the rate is
-- taken over the time the targets lasted, not over wrk's -d. Requests still in flight when
-- the last target has been sent are not counted (at most one per connection), but the server
-- did them: its CPU per request is over by that share.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local prepared, n, i = {}, 0, 0
first_us, last_us = 0, 0

setup = common.setup_keep
done = common.done

function init(args)
   for _, t in ipairs(common.targets(thread_id)) do
      prepared[#prepared + 1] = common.format(t)
   end
   n = #prepared
end

function request()
   if first_us == 0 then first_us = common.now_us() end
   i = i + 1
   if i >= n then
      -- The last target: wrk writes it, then the thread's loop ends (no target is sent twice).
      wrk.thread:stop()
      return prepared[n]
   end
   return prepared[i]
end

function response(status, headers, body)
   last_us = common.now_us()
end

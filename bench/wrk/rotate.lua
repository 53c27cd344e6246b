-- Every request prepared once in init(), then sent in turn: GET lists and offers, POST
-- financing invoices (each line a fresh batch of invoices), POST /v1/auth/token.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local prepared, n, i = {}, 0, 0

setup = common.setup
done = common.done

function init(args)
   for _, t in ipairs(common.targets(thread_id)) do
      prepared[#prepared + 1] = common.format(t)
   end
   n = #prepared
end

function request()
   i = i % n + 1
   return prepared[i]
end

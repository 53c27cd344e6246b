-- Walks whole lists page by page: the first page of an entity, then each next_pagination_token
-- until there is none, then the next entity. One walk per thread at a time: with several
-- connections a token may come back after the walk moved on; it is used all the same (it is a
-- valid cursor, and both servers see the same pattern).
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local targets, first, i, token = {}, {}, 0, nil

setup = common.setup
done = common.done

function init(args)
   targets = common.targets(thread_id)
   for k, t in ipairs(targets) do
      first[k] = common.format(t)
   end
end

function request()
   if token then
      local t = targets[i]
      local base = t.path:match("^([^?]*)")
      return common.format(t, base .. "?pagination_token=" .. token)
   end
   i = i % #targets + 1
   return first[i]
end

function response(status, headers, body)
   token = body:match('"next_pagination_token":"([^"]+)"')
end

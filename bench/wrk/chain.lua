-- Creates a receivable, then issues it: two requests per iteration. Each 201 answer's id is
-- queued; the next request of any connection issues the oldest queued receivable, or creates
-- another when none waits. (One thread drives every connection, so the queue is shared, and
-- an answer is matched to its target by its counterpart: one per target.)
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local targets, creates, by_counterpart, queue, head, tail, i = {}, {}, {}, {}, 1, 0, 0

setup = common.setup
done = common.done

function init(args)
   targets = common.targets(thread_id)
   for k, t in ipairs(targets) do
      creates[k] = common.format(t)
      by_counterpart[t.body:match('"counterpart_id": *"([^"]+)"')] = k
   end
end

function request()
   if head <= tail then
      local item = queue[head]
      queue[head] = nil
      head = head + 1
      local t = targets[item.k]
      return wrk.format("POST", t.path .. "/" .. item.id .. "/issue",
                        common.headers(t.bearer, t.entity))
   end
   i = i % #targets + 1
   return creates[i]
end

function response(status, headers, body)
   if status == 201 then
      local id = body:match('^{"id":"([^"]+)"')
      local k = by_counterpart[body:match('"counterpart_id":"([^"]+)"')]
      if id and k then
         tail = tail + 1
         queue[tail] = { id = id, k = k }
      end
   end
end

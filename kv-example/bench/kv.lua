-- wrk script for kv-example: `put` (PUT /kv/KEY with a 48-byte value), `get` (a
-- linearizable GET /kv/KEY) or `stale` (GET /kv/KEY?stale), KEY 8 bytes ("k" and 7
-- digits) drawn at random from KEYS keys (10000 by default). The requests are made
-- once, in init, so that wrk spends little of the machine per request.
--   wrk -t2 -c256 -d10s --latency -s kv.lua http://127.0.0.1:9001 -- put 10000
local requests = {}
local n = 0

function init(args)
  local op = args[1] or "get"
  local keys = tonumber(args[2] or "10000")
  local value = string.rep("v", 48)
  math.randomseed(os.time() + math.random(1, 1000000))
  for i = 1, 4096 do
    local path = string.format("/kv/k%07d", math.random(0, keys - 1))
    if op == "put" then
      requests[i] = wrk.format("PUT", path, nil, value)
    elseif op == "stale" then
      requests[i] = wrk.format("GET", path .. "?stale")
    else
      requests[i] = wrk.format("GET", path)
    end
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

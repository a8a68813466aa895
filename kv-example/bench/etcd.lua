-- wrk script for etcd 3.4's HTTP/JSON gateway, the same workload as kv.lua: `put`
-- (POST /v3/kv/put) or `get` (POST /v3/kv/range, linearizable, etcd's default), KEY
-- 8 bytes ("k" and 7 digits) drawn at random from KEYS keys (10000 by default), a
-- 48-byte value; keys and values base64-encoded as the gateway wants them.
--   wrk -t2 -c256 -d10s --latency -s etcd.lua http://127.0.0.1:2379 -- put 10000
local requests = {}
local n = 0
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    for j = 3, 0, -1 do
      local k = math.floor(v / 64 ^ j) % 64 + 1
      out[#out + 1] = alphabet:sub(k, k)
    end
    if not b then out[#out - 1] = "=" end
    if not c then out[#out] = "=" end
  end
  return table.concat(out)
end

function init(args)
  local op = args[1] or "get"
  local keys = tonumber(args[2] or "10000")
  local value = base64(string.rep("v", 48))
  local headers = { ["Content-Type"] = "application/json" }
  math.randomseed(os.time() + math.random(1, 1000000))
  for i = 1, 4096 do
    local key = base64(string.format("k%07d", math.random(0, keys - 1)))
    if op == "put" then
      local body = string.format('{"key":"%s","value":"%s"}', key, value)
      requests[i] = wrk.format("POST", "/v3/kv/put", headers, body)
    else
      requests[i] = wrk.format("POST", "/v3/kv/range", headers, string.format('{"key":"%s"}', key))
    end
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

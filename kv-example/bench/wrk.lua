-- wrk script for kv-example (SYSTEM `kv`) and, for comparison, etcd 3.4's HTTP/JSON
-- gateway (SYSTEM `etcd`), the same workload on both: OP `put` (a 48-byte value),
-- `get` (a linearizable read: etcd's default too) or, on kv-example, `stale` (a
-- local read), KEY 8 bytes ("k" and 7 digits), one of KEYS keys (10000 by default)
-- taken in turn. etcd takes keys and values base64-encoded in JSON bodies. The
-- requests are made once, in init, so that wrk spends little of the machine on each.
--   wrk -t2 -c256 -d10s --latency -s wrk.lua http://127.0.0.1:9001 -- kv put 10000
--   wrk -t2 -c256 -d10s --latency -s wrk.lua http://127.0.0.1:2379 -- etcd get 10000
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

local function kv_request(op, key, value)
  local path = "/kv/" .. key
  if op == "put" then
    return wrk.format("PUT", path, nil, value)
  elseif op == "stale" then
    return wrk.format("GET", path .. "?stale")
  end
  return wrk.format("GET", path)
end

local function etcd_request(op, key, value)
  local headers = { ["Content-Type"] = "application/json" }
  if op == "put" then
    local body = string.format('{"key":"%s","value":"%s"}', base64(key), base64(value))
    return wrk.format("POST", "/v3/kv/put", headers, body)
  end
  return wrk.format("POST", "/v3/kv/range", headers, string.format('{"key":"%s"}', base64(key)))
end

function init(args)
  local make = (args[1] == "etcd") and etcd_request or kv_request
  local op = args[2] or "get"
  local keys = tonumber(args[3] or "10000")
  local value = string.rep("v", 48)
  for i = 1, keys do
    requests[i] = make(op, string.format("k%07d", i - 1), value)
  end
  -- Each thread walks every key in turn, from its own place (a table's address
  -- differs between threads), so the puts write every key the gets read.
  n = tonumber(tostring({}):match("0x(%x+)"), 16) % keys
end

function request()
  n = n % #requests + 1
  return requests[n]
end

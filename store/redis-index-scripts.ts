/** The Lua scripts of the cluster's run index (store/redis-state.ts): indexing, listing, reading one run. */
import { LuaScript } from "./lua-script.js";

/**
 * KEYS: json, state, flow hashes; all; by state pending, active, archived; by flow; by
 * flow and state pending, active, archived; trash. ARGV: run, flow, state, json, cap.
 * Returns runs trimmed from the index (or left in the trash) whose node hashes must go.
 */
const INDEX_RUN = `
local run, flow, state, json, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local S = { pending = 5, active = 6, archived = 7 }
local FS = { pending = 9, active = 10, archived = 11 }
if not S[state] then return redis.error_reply('ERR bad run state ' .. state) end
local old_flow = redis.call('HGET', KEYS[3], run)
if old_flow and old_flow ~= flow then return redis.error_reply('ERR run is indexed under another flow') end
local old = redis.call('HGET', KEYS[2], run)
-- An ended run stays ended: a late write of an earlier state (a retried backlog) is ignored.
if old == 'archived' and state ~= 'archived' then return {} end
redis.call('HSET', KEYS[1], run, json)
redis.call('HSET', KEYS[2], run, state)
redis.call('HSET', KEYS[3], run, flow)
redis.call('ZADD', KEYS[4], 0, run)
redis.call('ZADD', KEYS[8], 0, run)
if old ~= state then
  if old and S[old] then
    redis.call('ZREM', KEYS[S[old]], run)
    redis.call('ZREM', KEYS[FS[old]], run)
  end
  redis.call('ZADD', KEYS[S[state]], 0, run)
  redis.call('ZADD', KEYS[FS[state]], 0, run)
end
local out = {}
if state == 'archived' then
  local over = redis.call('ZCARD', KEYS[11]) - cap
  if over > 0 then
    local victims = redis.call('ZRANGE', KEYS[11], 0, over - 1)
    for _, v in ipairs(victims) do
      redis.call('HDEL', KEYS[1], v)
      redis.call('HDEL', KEYS[2], v)
      redis.call('HDEL', KEYS[3], v)
      redis.call('ZREM', KEYS[4], v)
      redis.call('ZREM', KEYS[7], v)
      redis.call('ZREM', KEYS[8], v)
      redis.call('ZREM', KEYS[11], v)
      redis.call('SADD', KEYS[12], v)
      out[#out + 1] = v
    end
  end
end
if #out == 0 and redis.call('SCARD', KEYS[12]) > 0 then out = redis.call('SRANDMEMBER', KEYS[12], 100) end
return out
`;

/** KEYS: a lexical set of run ids, the json hash. ARGV: max ('+' or '(' .. before), limit. Newest first. */
const LIST_RUNS = `
local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ids, 500 do
  local part = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 499, #ids)))
  for _, j in ipairs(part) do
    if j then out[#out + 1] = j end
  end
end
return out
`;

/** KEYS: json hash, the run's node hash. ARGV: run. */
const GET_RUN = `
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return { 0 } end
return { 1, json, redis.call('HGETALL', KEYS[2]) }
`;

export const INDEX_SCRIPTS = {
  indexRun: new LuaScript("indexRun", INDEX_RUN),
  listRuns: new LuaScript("listRuns", LIST_RUNS),
  getRun: new LuaScript("getRun", GET_RUN),
} as const;

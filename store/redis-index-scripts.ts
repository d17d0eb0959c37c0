/** The Lua scripts of the cluster's run index (store/redis-state.ts): writing it in batches, listing, reading one run. */
import { LuaScript } from "./lua-script.js";

/**
 * Writes of the run index, applied in order as if each were its own call: a Lua function
 * `index_apply(kb, ab)` that any script can carry (the index's batch below; a run's release,
 * which applies its last writes only if it commits). Its keys are KEYS[kb + 1 …]: json,
 * state, flow hashes; all; by state pending, active, archived; trash; then each write's own
 * keys in order — a run's: by flow, by flow and state pending, active, archived; a node's:
 * the run's node hash. Its arguments are ARGV[ab …]: cap, then per write 'r', run, flow,
 * state, json or 'n', run, node, json. Returns the runs trimmed from the index (or left in
 * the trash) whose node hashes must go, and the writes refused (run, why — a bad state,
 * another flow than indexed: the rest still apply), or an error reply.
 */
export const INDEX_APPLY = `
local function index_apply(kb, ab)
  local cap = tonumber(ARGV[ab])
  local S = { pending = kb + 5, active = kb + 6, archived = kb + 7 }
  local FS = { pending = 1, active = 2, archived = 3 }
  local RANK = { pending = 0, active = 1, archived = 2 }
  local trimmed, refused = {}, {}
  local function index_run(run, flow, state, json, k)
    if not S[state] then return 'bad run state ' .. tostring(state) end
    local old_flow = redis.call('HGET', KEYS[kb + 3], run)
    if old_flow and old_flow ~= flow then return 'indexed under flow ' .. old_flow end
    local old = redis.call('HGET', KEYS[kb + 2], run)
    -- An ended run stays ended: a late write of an earlier state (a retried backlog) is ignored.
    if old == 'archived' and state ~= 'archived' then return nil end
    -- Nor does a write held back (a partition delivering a host's bytes when it heals, a retried
    -- batch) undo a later state another host wrote: a run goes pending → active within an
    -- attempt, and a requeue starts the next attempt pending again.
    if old and old ~= state and RANK[old] then
      local was = redis.call('HGET', KEYS[kb + 1], run)
      local ok_was, w = pcall(cjson.decode, was or '')
      local ok_now, n = pcall(cjson.decode, json)
      local wa = ok_was and type(w) == 'table' and tonumber(w.attempt) or 1
      local na = ok_now and type(n) == 'table' and tonumber(n.attempt) or 1
      if na < wa or (na == wa and RANK[state] < RANK[old]) then return nil end
    end
    redis.call('HSET', KEYS[kb + 1], run, json)
    if old ~= state then redis.call('HSET', KEYS[kb + 2], run, state) end
    if not old_flow then
      redis.call('HSET', KEYS[kb + 3], run, flow)
      redis.call('ZADD', KEYS[kb + 4], 0, run)
      redis.call('ZADD', KEYS[k], 0, run)
    end
    if old ~= state then
      if old and S[old] then
        redis.call('ZREM', KEYS[S[old]], run)
        redis.call('ZREM', KEYS[k + FS[old]], run)
      end
      redis.call('ZADD', KEYS[S[state]], 0, run)
      redis.call('ZADD', KEYS[k + FS[state]], 0, run)
    end
    if state == 'archived' then
      local over = redis.call('ZCARD', KEYS[k + 3]) - cap
      if over > 0 then
        local victims = redis.call('ZRANGE', KEYS[k + 3], 0, over - 1)
        for _, v in ipairs(victims) do
          redis.call('HDEL', KEYS[kb + 1], v)
          redis.call('HDEL', KEYS[kb + 2], v)
          redis.call('HDEL', KEYS[kb + 3], v)
          redis.call('ZREM', KEYS[kb + 4], v)
          redis.call('ZREM', KEYS[kb + 7], v)
          redis.call('ZREM', KEYS[k], v)
          redis.call('ZREM', KEYS[k + 3], v)
          redis.call('SADD', KEYS[kb + 8], v)
          trimmed[#trimmed + 1] = v
        end
      end
    end
    return nil
  end
  local k, i = kb + 9, ab + 1
  while i <= #ARGV do
    if ARGV[i] == 'r' then
      local err = index_run(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], k)
      if err then
        refused[#refused + 1] = ARGV[i + 1]
        refused[#refused + 1] = err
      end
      k, i = k + 4, i + 5
    elseif ARGV[i] == 'n' then
      redis.call('HSET', KEYS[k], ARGV[i + 2], ARGV[i + 3])
      k, i = k + 1, i + 4
    else
      return nil, 'ERR bad index write ' .. tostring(ARGV[i])
    end
  end
  if #trimmed == 0 and redis.call('SCARD', KEYS[kb + 8]) > 0 then trimmed = redis.call('SRANDMEMBER', KEYS[kb + 8], 100) end
  return { trimmed, refused }
end
`;

/** The index's batch (hub/index-mirror.ts sends what a host has ready in one): index_apply with its keys and arguments from the first. */
const INDEX_BATCH = `${INDEX_APPLY}
local out, err = index_apply(0, 1)
if err then return redis.error_reply(err) end
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
  indexBatch: new LuaScript("indexBatch", INDEX_BATCH),
  listRuns: new LuaScript("listRuns", LIST_RUNS),
  getRun: new LuaScript("getRun", GET_RUN),
} as const;

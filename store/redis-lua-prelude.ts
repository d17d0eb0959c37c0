/**
 * The Lua prelude every cluster-state script starts with (store/redis-scripts.ts): the state
 * tables by name, Redis time, packed lists, and the steps scripts share — taking and
 * dropping a run's hold, ending its phase, pruning, parking and bringing back pends.
 */
import { STATE_TABLES } from "./redis-keys.js";

/** How long a claim's or reap's answer is kept for a retry that lost the reply (ms). */
export const REPLY_TTL_MS = 120_000;

/**
 * A state script's text: the prelude, then its body, with every `K.<table>` made the
 * table's `KEYS[i]` here rather than looked up in a table built at each call (building
 * that table from the 30-odd keys was half of a small script's time in Redis: 10 µs of 20
 * per call, measured with commandstats). An unknown table name is a programming error,
 * thrown when the module loads.
 */
export function stateScript(body: string): string {
  return bindTables(PRELUDE + body);
}

/**
 * A state script without the prelude's steps, for the few that run on every renewal of every
 * host and need none of them: defining the prelude's functions is most of what such a script
 * costs Redis. It has the prelude's conventions (ARGV[1…4], A, EPOCH, NT and K.<table>) and
 * its clock (now_ms, num).
 */
export function leanStateScript(body: string): string {
  return bindTables(`${HEADER}\n${body}`);
}

function bindTables(lua: string): string {
  return lua.replace(/\bK\.(\w+)/g, (_, name: string) => {
    const i = (STATE_TABLES as readonly string[]).indexOf(name);
    if (i < 0) throw new Error(`state script names an unknown table K.${name}`);
    return `KEYS[${i + 1}]`;
  });
}

const HEADER = `
-- K.<table> is KEYS[<its place in STATE_TABLES>] (bindTables); NT: how many tables, a
-- script's own keys follow them.
local NT = ${STATE_TABLES.length}
local PHASE_TTL = tonumber(ARGV[1])
local DONE_RECORD_TTL = tonumber(ARGV[2])
-- The caller's failover epoch ('' = none: plain redis://, or a script that needs none) and
-- how long hosts are given to register again after one (their lease + margin, ms).
local EPOCH = ARGV[3]
local SETTLE_MS = tonumber(ARGV[4])
local A = 5

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(n) return string.format('%.0f', n) end`;

const PRELUDE = `${HEADER}
local function unpack_list(s)
  local out, i = {}, 1
  while i <= #s do
    local c = string.find(s, ':', i, true)
    local n = tonumber(string.sub(s, i, c - 1))
    out[#out + 1] = string.sub(s, c + 1, c + n)
    i = c + n + 1
  end
  return out
end
local function live(host, now)
  local u = redis.call('HGET', K.leases, host)
  return u ~= false and tonumber(u) >= now
end
-- A host's runs are taken only after its lease end plus its own margin (reapAt; a host
-- registered without one: its lease end), so that a host cut off has stopped their tasks.
local function reapable(host, now)
  local r = redis.call('ZSCORE', K.reapAt, host)
  return r ~= false and tonumber(r) < now
end
local function bump() redis.call('INCR', K.stateVer) end
-- The registry changed what dispatch reads of it (hosts, their tags and slots): snapshots
-- send the host table again only then. Never below the server's time × 1000, so a state
-- that lost the counter (a restart without persistence, a promoted replica) never hands
-- out again a version a host has cached (host changes are far fewer than 1,000 a ms).
local function bump_hosts(now)
  local v = tonumber(redis.call('GET', K.hostVer) or '0')
  redis.call('SET', K.hostVer, num(math.max(v + 1, now * 1000)))
end
-- Tokens are epoch × 2^32 + sequence: every token of a primary promoted at a higher epoch is
-- above every token of the ones before, even tokens whose writes the replica never got.
-- Exact in Lua's doubles while epoch < 2^21 (Sentinel's config-epoch grows by one or a few
-- per failover); 0 without Sentinel, where a token is the sequence as before.
local TOKEN_SPLIT = 4294967296
local function new_token()
  local seq = redis.call('INCR', K.tokenSeq)
  return tonumber(redis.call('GET', K.tokenEpoch) or '0') * TOKEN_SPLIT + seq
end
-- A script that acts for a host checks its epoch first. Lower than the one seen: the host
-- talks to a primary it took for another (it learns the epoch again). Higher: the first
-- word from a host since a failover — writes the old primary acknowledged may be lost, so
-- the sequence starts again under the new epoch, the state version jumps past any version
-- the old primary gave out, and nothing is claimed or reaped for SETTLE_MS while hosts
-- register their runs again (see settling).
local function see_epoch(now)
  if EPOCH == '' then return end
  local e = tonumber(EPOCH)
  local cur = redis.call('GET', K.tokenEpoch)
  -- The state's first epoch (written by the first host to act on it, so a primary that has
  -- any of the cluster's state has it): nothing was handed out under another primary, so
  -- nobody must register again. (Redis Cluster's config epochs start above 0, Sentinel's at 0.)
  if not cur then
    redis.call('SET', K.tokenEpoch, EPOCH)
    return
  end
  local stored = tonumber(cur)
  if e < stored then error('E_EPOCH: the caller is at failover epoch ' .. EPOCH .. ', the state at ' .. string.format('%.0f', stored)) end
  if e == stored then return end
  redis.call('SET', K.tokenEpoch, EPOCH)
  redis.call('SET', K.tokenSeq, '0')
  local ver = tonumber(redis.call('GET', K.stateVer) or '0')
  redis.call('SET', K.stateVer, string.format('%.0f', math.max(ver + 1, e * TOKEN_SPLIT)))
  bump_hosts(now)
  local u = tonumber(redis.call('GET', K.settleUntil) or '0')
  redis.call('SET', K.settleUntil, string.format('%.0f', math.max(u, now + SETTLE_MS)))
end
local function settling(now)
  local u = redis.call('GET', K.settleUntil)
  return u ~= false and tonumber(u) > now
end
-- Whether every tag of packed list \`want\` is in packed list \`have\`.
local function subset(want, have)
  local set = {}
  for _, t in ipairs(unpack_list(have)) do set[t] = true end
  for _, t in ipairs(unpack_list(want)) do
    if not set[t] then return false end
  end
  return true
end
-- Whether \`host\` has a free slot: a wake-up (or an adoption) for a pend stands only for a
-- host that may take it; one that filled up meanwhile leaves the pend to whoever looks.
local function free_slots(host)
  return tonumber(redis.call('HGET', K.slots, host) or '0') - tonumber(redis.call('HGET', K.running, host) or '0')
end
local function has_room(host) return free_slots(host) > 0 end
-- The host a wake-up for \`run\` stands for (woken within \`stand\` ms and with a free slot), or nil.
local function attending(run, now, stand)
  local at, who = string.match(redis.call('HGET', K.wokeFor, run) or '', '^(%d+) (.*)$')
  if at and tonumber(at) + stand > now and has_room(who) then return who end
  return nil
end
local function decr(h, f)
  if redis.call('HINCRBY', h, f, -1) <= 0 then redis.call('HDEL', h, f) end
end
-- meta: packed {host, flowKey, resources...}. A pend has no drop times (addPend cleared them).
local function take(run, meta, m, token, was_pending)
  redis.call('HSET', K.active, run, meta)
  redis.call('HSET', K.tokens, run, num(token))
  for j = 3, #m do redis.call('HSET', K.held, m[j], run) end
  redis.call('HINCRBY', K.running, m[1], 1)
  redis.call('HINCRBY', K.flowActive, m[2], 1)
  redis.call('HSET', K.phase, run, 'active')
  if not was_pending then
    redis.call('ZREM', K.phaseDrop, run)
    redis.call('ZREM', K.recordDrop, run)
  end
end
local function pack1(x) return #x .. ':' .. x end
-- A parked pend back on the list, in its place; its blocker's indexes forget it.
local function unpark(run)
  local seq = redis.call('ZSCORE', K.parked, run)
  if not seq then return false end
  redis.call('ZADD', K.pendOrder, seq, run)
  redis.call('ZREM', K.parked, run)
  local on = redis.call('HGET', K.parkedOn, run)
  if on then
    local o = unpack_list(on)
    if o[1] == 't' then
      redis.call('ZREM', K.parkedTagRuns, o[3])
      decr(K.parkedTagSets, o[2])
    elseif o[1] == 'r' then
      redis.call('ZREM', K.parkedRes, o[3])
      decr(K.parkedResCount, o[2])
    elseif o[1] == 'c' then
      redis.call('ZREM', K.parkedConc, o[3])
      decr(K.parkedConcCount, o[2])
      if not redis.call('HGET', K.parkedConcCount, o[2]) then redis.call('HDEL', K.parkedConcLimit, o[2]) end
    elseif o[1] == 's' then
      redis.call('ZREM', K.parkedSlots, o[3])
      decr(K.parkedSlotSets, o[2])
    end
    redis.call('HDEL', K.parkedOn, run)
  end
  return true
end
-- The oldest pend parked on \`key\` in a lexical index (parkedRes, parkedConc), if any.
local function head_of(zset, key)
  local p = pack1(key)
  local m = redis.call('ZRANGEBYLEX', zset, '[' .. p, '[' .. p .. '\\255', 'LIMIT', 0, 1)[1]
  if not m then return nil end
  return string.sub(m, #p + 21)
end
-- A resource is free and nobody on the list is first in line for it: its oldest parked pend comes back.
local function resource_freed(r)
  if redis.call('HEXISTS', K.held, r) == 1 then return end
  local h = head_of(K.parkedRes, r)
  if h then unpark(h) end
end
-- A flow's active count went down under its limit: as many of its pends parked on
-- concurrency as the limit has room for come back, oldest first. Only pends that need no
-- resource are parked on concurrency, and the pends of one flow version need the same host
-- tags: if the oldest cannot start for want of a host, no younger one can, so a decision
-- over the whole list would start no more than these. (Bringing back all of them made each
-- end of a limited flow cost a read of its whole queue.)
local function concurrency_freed(flow_key)
  local limit = redis.call('HGET', K.parkedConcLimit, flow_key)
  local room = limit and tonumber(limit) - tonumber(redis.call('HGET', K.flowActive, flow_key) or '0') or 0
  if room <= 0 then return end
  local p = pack1(flow_key)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', K.parkedConc, '[' .. p, '[' .. p .. '\\255', 'LIMIT', 0, room)) do
    unpark(string.sub(m, #p + 21))
  end
end
-- Parked pends whose tags a host with packed \`tags\` has go back on the list: a look at
-- each distinct tag set parked (a few), then only the pends that come back — a host joining
-- or renewing after a lapse costs nothing per pend that stays parked.
local function unpark_for(tags)
  for _, set in ipairs(redis.call('HKEYS', K.parkedTagSets)) do
    if subset(set, tags) then
      local p = pack1(set)
      for _, m in ipairs(redis.call('ZRANGEBYLEX', K.parkedTagRuns, '[' .. p, '[' .. p .. '\\255')) do
        unpark(string.sub(m, #p + 21))
      end
    end
  end
end
-- \`n\` slots freed on a host with packed \`tags\` (a release: one; a host joining: its free
-- slots): as many pends parked for a slot that it can run come back, oldest first — the head
-- of each tag set it has (a few) compared, then only the pends that come back.
local function slots_freed(tags, n)
  if n <= 0 or redis.call('HLEN', K.parkedSlotSets) == 0 then return end
  local sets = {}
  for _, set in ipairs(redis.call('HKEYS', K.parkedSlotSets)) do
    if subset(set, tags) then sets[#sets + 1] = pack1(set) end
  end
  for _ = 1, math.min(n, 64) do
    local best, best_at = nil, nil
    for _, p in ipairs(sets) do
      local m = redis.call('ZRANGEBYLEX', K.parkedSlots, '[' .. p, '[' .. p .. '\\255', 'LIMIT', 0, 1)[1]
      if m then
        local at = string.sub(m, #p + 1, #p + 20)
        if not best_at or at < best_at then best, best_at = string.sub(m, #p + 21), at end
      end
    end
    if not best then return end
    unpark(best)
  end
end
local function drop(run)
  local meta = redis.call('HGET', K.active, run)
  if not meta then return '' end
  local m = unpack_list(meta)
  local token = redis.call('HGET', K.tokens, run) or '0'
  redis.call('HDEL', K.active, run)
  redis.call('HDEL', K.tokens, run)
  for j = 3, #m do
    if redis.call('HGET', K.held, m[j]) == run then
      redis.call('HDEL', K.held, m[j])
      resource_freed(m[j])
    end
  end
  decr(K.running, m[1])
  decr(K.flowActive, m[2])
  concurrency_freed(m[2])
  return token
end
local function ended(run, phase, now, record_ttl)
  redis.call('HSET', K.phase, run, phase)
  redis.call('ZADD', K.phaseDrop, num(now + PHASE_TTL), run)
  redis.call('ZADD', K.recordDrop, num(now + record_ttl), run)
end
-- Forgets a bounded number of expired phases and records per call.
local function prune(now)
  local due = redis.call('ZRANGEBYSCORE', K.phaseDrop, '-inf', num(now), 'LIMIT', 0, 100)
  for _, run in ipairs(due) do
    local p = redis.call('HGET', K.phase, run)
    if p == 'done' or p == 'reaped' then redis.call('HDEL', K.phase, run) end
    redis.call('ZREM', K.phaseDrop, run)
  end
  due = redis.call('ZRANGEBYSCORE', K.recordDrop, '-inf', num(now), 'LIMIT', 0, 100)
  for _, run in ipairs(due) do
    redis.call('HDEL', K.records, run)
    redis.call('ZREM', K.recordDrop, run)
  end
end
-- A reply kept for a retry after a lost reply: a list starting with 'ok'. An empty answer
-- changed nothing, so a retry may as well run afresh: it is not kept.
local function keep_reply(key, out)
  if #out < 2 then return end
  for i = 1, #out, 1000 do
    redis.call('RPUSH', key, unpack(out, i, math.min(i + 999, #out)))
  end
  redis.call('PEXPIRE', key, ${REPLY_TTL_MS})
end
`;

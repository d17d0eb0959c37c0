/**
 * The Lua scripts of the Redis cluster state (store/redis-state.ts): each state change is
 * one script, so it is validated and applied atomically however many hosts call at once.
 *
 * Conventions shared by every state script:
 * - KEYS start with the state tables in STATE_TABLES order (store/redis-keys.ts); a
 *   script's own keys follow. Scripts never build a key.
 * - ARGV[1] is how long done/reaped phases are remembered, ARGV[2] how long a done run's
 *   record is kept (ms); a script's own arguments start at ARGV[3].
 * - Time is Redis server time (`TIME`), so hosts' clocks do not matter. Redis 7 replicates
 *   scripts by their effects, where TIME is allowed before writes.
 * - No JSON is read or written in Lua: an active run's host, flow key and resources travel
 *   as a length-prefixed list (`packList` below), so no id can break a script.
 * - Nothing is returned as a Lua boolean (RESP3 would turn it into a boolean reply).
 */
import { LuaScript } from "./lua-script.js";
import { HOST_SCRIPTS } from "./redis-host-scripts.js";
import { INDEX_APPLY, INDEX_SCRIPTS } from "./redis-index-scripts.js";
import { stateScript } from "./redis-lua-prelude.js";

/**
 * ARGV[A]: run, how, the pend's view JSON, its record JSON, the adopting host, the pend's host
 * tags packed; ARGV[A + 6]: '1' when the adopting host would take the run at once (a "new" pend
 * only), ARGV[A + 7] the flow's concurrency ('' = none), ARGV[A + 8] packed {host, flowKey,
 * resources...}; then the run's first writes of the run index (ARGV[A + 9] …, their keys from
 * KEYS[NT + 2]: INDEX_APPLY's; ARGV[A + 9] '' for none), applied only if the pend is added.
 * KEYS[NT + 1]: where a take's answer is kept for a retry after a lost reply.
 *
 * Taken at once ("sync match"): the run does not go on the list but is claimed for its
 * adopting host in this step, when that is what a pass over the state would decide — the
 * host is live with the tags and a free slot, no live host with the tags has more free slots
 * (dispatch's choice: the freest, the adopter among equals), its resources are free and no
 * pend is parked on them, its flow's concurrency allows it with none of the flow's pends
 * parked on it, no tag set parked (for a host or a slot) is one the host could run, and no pend is on the scanned
 * list before it — or, for a run with no resource and no concurrency limit, the adopter has
 * more free slots than pends are listed (none of them could lose a slot to it). Otherwise
 * the pend is added as below. Returns {'ok', run, token, record} when
 * taken (kept for a retry), else 1, or 0 when a recover or requeue is refused.
 *
 * An added pend counts as the adopting host's wake-up for it (wokeFor) if that host can take
 * it — it has the tags and a free slot: it looks at once anyway (it adopted it), so another
 * host's pass does not wake it again within the stand.
 */
const ADD_PEND = `${INDEX_APPLY}
local reply = KEYS[NT + 1]
if redis.call('EXISTS', reply) == 1 then return redis.call('LRANGE', reply, 0, -1) end
local run, how = ARGV[A], ARGV[A + 1]
local phase = redis.call('HGET', K.phase, run)
if how == 'recover' and phase and phase ~= 'pending' then return 0 end
if how == 'requeue' and phase ~= 'reaped' then return 0 end
if redis.call('ZSCORE', K.pendOrder, run) or redis.call('ZSCORE', K.parked, run) then return 1 end
local adopter, want = ARGV[A + 4], ARGV[A + 5]
local tags = redis.call('HGET', K.hostTags, adopter)
-- Whether a pass over the state, with this pend on the list, would give it to its adopter now.
local function taken_now(now)
  if settling(now) or not live(adopter, now) then return false end
  if not tags or not subset(want, tags) or not redis.call('ZSCORE', K.slotRank, adopter) then return false end
  local free = free_slots(adopter)
  if free <= 0 then return false end
  local m = unpack_list(ARGV[A + 8])
  -- Pends listed before it: only a run that needs no resource and has no concurrency limit
  -- (it cannot overtake one in a resource's or a flow's queue), and only where the adopter
  -- keeps a free slot for each of them (it takes no slot an older pend could have had).
  local listed = redis.call('ZCARD', K.pendOrder)
  if listed > 0 and (#m > 2 or ARGV[A + 7] ~= '' or free <= listed) then return false end
  for j = 3, #m do
    if redis.call('HEXISTS', K.held, m[j]) == 1 or redis.call('HEXISTS', K.parkedResCount, m[j]) == 1 then return false end
  end
  if redis.call('HEXISTS', K.parkedConcCount, m[2]) == 1 then return false end
  local conc = ARGV[A + 7]
  if conc ~= '' and tonumber(redis.call('HGET', K.flowActive, m[2]) or '0') >= tonumber(conc) then return false end
  for _, set in ipairs(redis.call('HKEYS', K.parkedTagSets)) do
    if subset(set, tags) then return false end
  end
  for _, set in ipairs(redis.call('HKEYS', K.parkedSlotSets)) do
    if subset(set, tags) then return false end
  end
  -- Hosts registered with more slots than the adopter has free: is one of them live, with the
  -- tags and more free slots? Up to 16 looked at; more than that, the pass decides.
  local more = redis.call('ZRANGEBYSCORE', K.slotRank, '(' .. free, '+inf', 'LIMIT', 0, 17)
  for i, h in ipairs(more) do
    if i > 16 then return false end
    if h ~= adopter and live(h, now) and subset(want, redis.call('HGET', K.hostTags, h) or '') and free_slots(h) > free then return false end
  end
  return true
end
if how == 'new' and ARGV[A + 6] == '1' then
  local now = now_ms()
  see_epoch(now)
  -- A run the state knows already (a child run adopted twice) goes the usual way.
  if not phase and taken_now(now) then
    local meta = ARGV[A + 8]
    if ARGV[A + 3] ~= '' then redis.call('HSET', K.records, run, ARGV[A + 3]) end
    local token = new_token()
    take(run, meta, unpack_list(meta), token, true)
    bump()
    if ARGV[A + 9] ~= '' then index_apply(NT + 1, A + 9) end
    local out = { 'ok', run, num(token), ARGV[A + 3] }
    keep_reply(reply, out)
    return out
  end
end
redis.call('ZADD', K.pendOrder, redis.call('INCR', K.pendSeq), run)
bump()
redis.call('HSET', K.pendView, run, ARGV[A + 2])
redis.call('HSET', K.pendRecord, run, ARGV[A + 3])
-- The run's record, for a requeue after a host loss (getRecord).
if ARGV[A + 3] ~= '' then redis.call('HSET', K.records, run, ARGV[A + 3]) end
redis.call('HSET', K.phase, run, 'pending')
if tags and subset(want, tags) and has_room(adopter) then redis.call('HSET', K.wokeFor, run, num(now_ms()) .. ' ' .. adopter) end
redis.call('ZREM', K.phaseDrop, run)
redis.call('ZREM', K.recordDrop, run)
-- A new run's own index entry cannot be refused (its flow is its own, its state the first).
if ARGV[A + 9] ~= '' then index_apply(NT + 1, A + 9) end
return 1
`;

const REMOVE_PEND = `
local run = ARGV[A]
unpark(run)
if not redis.call('ZSCORE', K.pendOrder, run) then return 0 end
local now = now_ms()
redis.call('ZREM', K.pendOrder, run)
bump()
redis.call('HDEL', K.wokeFor, run)
redis.call('HDEL', K.pendView, run)
redis.call('HDEL', K.pendRecord, run)
ended(run, 'done', now, DONE_RECORD_TTL)
prune(now)
return 1
`;

/** ARGV[A]: count, then per assignment: run, host, flowKey, concurrency ('' = none), packed {host, flowKey, resources...}. */
const CLAIM = `
local reply = KEYS[NT + 1]
if redis.call('EXISTS', reply) == 1 then return redis.call('LRANGE', reply, 0, -1) end
local now = now_ms()
see_epoch(now)
local out = {'ok'}
-- After a failover, hosts register their runs again before anything is claimed.
if settling(now) then return out end
local n = tonumber(ARGV[A])
for i = 0, n - 1 do
  local b = A + 1 + i * 5
  local run, host, flow_key, conc, meta = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  if redis.call('ZSCORE', K.pendOrder, run) then
    local m = unpack_list(meta)
    local ok = true
    for j = 3, #m do
      if redis.call('HEXISTS', K.held, m[j]) == 1 then ok = false break end
    end
    if ok then ok = live(host, now) end
    if ok then ok = has_room(host) end
    if ok and conc ~= '' then
      ok = tonumber(redis.call('HGET', K.flowActive, flow_key) or '0') < tonumber(conc)
    end
    if ok then
      local record = redis.call('HGET', K.pendRecord, run) or ''
      redis.call('HDEL', K.wokeFor, run)
      redis.call('ZREM', K.pendOrder, run)
      redis.call('HDEL', K.pendView, run)
      redis.call('HDEL', K.pendRecord, run)
      local token = new_token()
      take(run, meta, m, token, true)
      out[#out + 1] = run
      out[#out + 1] = num(token)
      out[#out + 1] = record
    end
  end
end
if #out > 1 then bump() end
prune(now)
keep_reply(reply, out)
return out
`;

/** ARGV[A]: run, host, packed {host, flowKey, resources...}. Returns the token, or -1. */
const HOLD = `
local run, host, meta = ARGV[A], ARGV[A + 1], ARGV[A + 2]
see_epoch(now_ms())
local phase = redis.call('HGET', K.phase, run)
local old = redis.call('HGET', K.active, run)
local mine = old and unpack_list(old)[1] == host
if phase and not (phase == 'active' and mine) then return -1 end
if old then drop(run) end
local token = new_token()
take(run, meta, unpack_list(meta), token, false)
bump()
return num(token)
`;

/**
 * The commit point of a run's end. It leaves a marker (host:token) for an hour, so a retry
 * after a lost reply, and a host that restarts between this and moving its run folder, can
 * tell its own release from a takeover. The oldest pend parked for a slot that the run's
 * host can run comes back. ARGV[A + 2]: how long a wake-up stands (ms). The run's
 * last writes of the run index may come with it (ARGV[A + 3] …, their keys from
 * KEYS[NT + 2]: INDEX_APPLY's; ARGV[A + 3] '' for none): applied only if it commits, in the
 * same round trip. Returns {1 (released) or 0, how many pends on the scanned list after it
 * no host with a free slot but the releasing one was woken for within the stand (none: the
 * releasing host's pass would start nothing a woken host is not starting; a list of more
 * than 64 counted whole),
 * runs trimmed from the index, index writes refused}.
 */
const RELEASE = `${INDEX_APPLY}
local run, token, marker, stand = ARGV[A], ARGV[A + 1], KEYS[NT + 1], tonumber(ARGV[A + 2])
local function indexed()
  if ARGV[A + 3] == '' then return {}, {} end
  local out, err = index_apply(NT + 1, A + 3)
  if err then return {}, { run, err } end
  return out[1], out[2]
end
-- A pend whose wake-up (or adoption) stands for the releasing host itself counts: that host
-- may have looked already and left it waiting (no slot then), and nobody else will look.
local function unattended(now, releaser)
  local n = redis.call('ZCARD', K.pendOrder)
  if n == 0 or n > 64 then return n end
  local c = 0
  for _, p in ipairs(redis.call('ZRANGE', K.pendOrder, 0, -1)) do
    local who = attending(p, now, stand)
    if not who or who == releaser then c = c + 1 end
  end
  return c
end
if redis.call('HGET', K.tokens, run) ~= token then
  local by = redis.call('GET', marker)
  if not (by and string.sub(by, -(#token + 1)) == ':' .. token) then return { 0, unattended(now_ms(), ''), {}, {} } end
  -- A repeat of a release that was applied (its reply lost): its index writes again, alike.
  local trimmed, refused = indexed()
  return { 1, unattended(now_ms(), string.sub(by, 1, #by - #token - 1)), trimmed, refused }
end
local now = now_ms()
local meta = redis.call('HGET', K.active, run)
local host = unpack_list(meta)[1]
redis.call('SET', marker, host .. ':' .. token, 'PX', DONE_RECORD_TTL)
drop(run)
-- Its slot is free: the oldest pend parked for a slot that its host can run comes back.
slots_freed(redis.call('HGET', K.hostTags, host) or '', 1)
ended(run, 'done', now, DONE_RECORD_TTL)
bump()
prune(now)
local trimmed, refused = indexed()
return { 1, unattended(now, host), trimmed, refused }
`;

/**
 * ARGV[A]: count, then per pend: kind, run, key, limit, its resources packed. Each pend
 * still on the list whose blocker still holds leaves the scanned list, in its place, and
 * waits on it: kind 't' (key: its host tags, packed): no live host has them — a host that
 * has them brings it back (heartbeat); 'r' (key: a resource): the resource is held — its
 * release brings back the oldest pend parked on it; 'c' (key: flowKey, limit): the flow's
 * concurrency is reached — a run of the flow ending brings back the oldest; 's' (key: its
 * host tags, packed): every live host with them is full — a slot freed on one brings back
 * the oldest (a release; a host joining, as many as it has free). Parking changes
 * no decision, so the version stays; a pend parked for tags or concurrency holds no
 * resource back (as dispatch decides), so a free resource of its brings back its queue's oldest.
 */
const PARK = `
local now = now_ms()
local hosts = nil
-- Whether no live host has tags \`key\`, once per tag set (a backlog repeats a few); whether
-- none of those has a free slot.
local nobody, full = {}, {}
local n = 0
for i = 0, tonumber(ARGV[A]) - 1 do
  local b = A + 1 + i * 5
  local kind, run, key, limit, resources = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local seq = redis.call('ZSCORE', K.pendOrder, run)
  local still = false
  if seq and kind == 't' then
    if nobody[key] == nil then
      hosts = hosts or redis.call('HGETALL', K.hostTags)
      nobody[key] = true
      for j = 1, #hosts, 2 do
        if live(hosts[j], now) and subset(key, hosts[j + 1]) then nobody[key] = false break end
      end
    end
    still = nobody[key]
  elseif seq and kind == 's' then
    if full[key] == nil then
      hosts = hosts or redis.call('HGETALL', K.hostTags)
      full[key] = true
      for j = 1, #hosts, 2 do
        if subset(key, hosts[j + 1]) and live(hosts[j], now) and has_room(hosts[j]) then full[key] = false break end
      end
    end
    still = full[key]
  elseif seq and kind == 'r' then
    still = redis.call('HEXISTS', K.held, key) == 1
  elseif seq and kind == 'c' then
    still = tonumber(redis.call('HGET', K.flowActive, key) or '0') >= tonumber(limit)
  end
  if still then
    redis.call('ZREM', K.pendOrder, run)
    redis.call('HDEL', K.wokeFor, run)
    redis.call('ZADD', K.parked, seq, run)
    local member = pack1(key) .. string.format('%020d', tonumber(seq)) .. run
    redis.call('HSET', K.parkedOn, run, pack1(kind) .. pack1(key) .. pack1(member))
    if kind == 't' then
      redis.call('ZADD', K.parkedTagRuns, 0, member)
      redis.call('HINCRBY', K.parkedTagSets, key, 1)
    elseif kind == 'r' then
      redis.call('ZADD', K.parkedRes, 0, member)
      redis.call('HINCRBY', K.parkedResCount, key, 1)
    elseif kind == 's' then
      redis.call('ZADD', K.parkedSlots, 0, member)
      redis.call('HINCRBY', K.parkedSlotSets, key, 1)
    else
      redis.call('ZADD', K.parkedConc, 0, member)
      redis.call('HINCRBY', K.parkedConcCount, key, 1)
      redis.call('HSET', K.parkedConcLimit, key, limit)
    end
    n = n + 1
    if kind ~= 'r' then
      for _, r in ipairs(unpack_list(resources)) do resource_freed(r) end
    end
  end
end
return n
`;

/**
 * One consistent read: server time, the pending list in order, and the tables dispatch
 * needs. The pends come as one string, their JSON views joined by newlines (JSON.stringify
 * never writes a raw newline): one bulk reply parses far faster than 10,000 small ones.
 * The host table (every registered host's tags and slots) only when the registry changed since the
 * caller's version of it (ARGV[A + 3]); liveness from the sorted lease ends instead: the
 * hosts whose lease lapsed (few) and the earliest lease end of those alive.
 */
const SNAPSHOT = `
local ver = redis.call('GET', K.stateVer) or '0'
if ARGV[A] == ver and (ARGV[A + 2] == '' or now_ms() < tonumber(ARGV[A + 2])) then return { 'same', ver } end
if ARGV[A + 1] == '1' and redis.call('ZCARD', K.pendOrder) == 0 then return { 'empty', ver, redis.call('ZCOUNT', K.leaseEnd, num(now_ms()), '+inf') } end
local now = now_ms()
local runs = redis.call('ZRANGE', K.pendOrder, 0, -1)
local views = {}
for i = 1, #runs, 500 do
  local part = redis.call('HMGET', K.pendView, unpack(runs, i, math.min(i + 499, #runs)))
  for _, v in ipairs(part) do
    if v then views[#views + 1] = v end
  end
end
local hv = redis.call('GET', K.hostVer) or '0'
-- What dispatch reads of the registry, its tags and slots, not the hosts' whole records (a
-- fifth of the bytes). Every registered host has a lease end (both are written and removed
-- together): no check of each host's (that made a reload cost 500 ZSCOREs at 500 hosts, and
-- every host reloads at once when a host joins, leaves or is reaped).
local send = ARGV[A + 3] ~= hv
local first = redis.call('ZRANGEBYSCORE', K.leaseEnd, num(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)[2] or ''
return {
  'full',
  ver,
  num(now),
  table.concat(views, '\\n'),
  hv,
  send and '1' or '',
  send and redis.call('HGETALL', K.hostTags) or {},
  send and redis.call('HGETALL', K.slots) or {},
  redis.call('ZRANGEBYSCORE', K.leaseEnd, '-inf', '(' .. num(now)),
  first,
  redis.call('HGETALL', K.held),
  redis.call('HGETALL', K.flowActive),
  redis.call('HGETALL', K.running),
  redis.call('HKEYS', K.parkedResCount),
  redis.call('HKEYS', K.parkedSlotSets),
}
`;

/**
 * ARGV[A…]: triples of kind ('r': a resource, 's': packed host tags parked for a slot), key,
 * before ('' = none); see ClusterState.unparkHeads.
 */
const UNPARK_HEADS = `
local n = 0
for i = A, #ARGV, 3 do
  local kind, r, before = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if kind == 's' or redis.call('HEXISTS', K.held, r) == 0 then
    local h = head_of(kind == 's' and K.parkedSlots or K.parkedRes, r)
    local ok = h ~= nil
    if ok and before ~= '' then
      local b = redis.call('ZSCORE', K.pendOrder, before)
      ok = not b or tonumber(redis.call('ZSCORE', K.parked, h)) < tonumber(b)
    end
    if ok then
      unpark(h)
      n = n + 1
    end
  end
end
if n > 0 then bump() end
return n
`;

/**
 * ARGV[A]: how long a wake-up for a pend stands (ms), ARGV[A + 1]: the host whose pass wakes
 * ('' = none), then pairs of run, host; KEYS after the tables: each pair's host's wake list.
 * A host is woken for a pend still on the list unless a host was woken for it within that
 * time: every pass of every host sees the pends that no host took yet, and without this each
 * would wake their hosts again — a herd of wake-ups growing with hosts × claimable pends.
 * The host woken for a pend may pass it on at once: its pass gave the pend to another host
 * (it filled up meanwhile, or a claim elsewhere changed who is freest); waiting out the
 * stand time there stalled such pends for 2 s, under load most of them, and the scanned
 * list grew until the cluster fell behind. No other host's pass may: passes over older and
 * newer states would wake hosts back and forth. Returns how many hosts were woken.
 */
const WAKE = `
local now = now_ms()
local stand, by = tonumber(ARGV[A]), ARGV[A + 1]
local n = 0
local woke = {}
for i = A + 2, #ARGV, 2 do
  local run, key = ARGV[i], KEYS[NT + (i - A) / 2]
  local host = ARGV[i + 1]
  local who = attending(run, now, stand)
  local stands = who and (who == host or who ~= by)
  if redis.call('ZSCORE', K.pendOrder, run) and not stands then
    redis.call('HSET', K.wokeFor, run, num(now) .. ' ' .. host)
    if not woke[key] then
      woke[key] = true
      redis.call('RPUSH', key, '1')
      redis.call('LTRIM', key, -1, -1)
      redis.call('PEXPIRE', key, 60000)
      n = n + 1
    end
  end
end
return n
`;

/**
 * A host registers its runs again after a failover (hub/failover.ts). ARGV[A]: the host,
 * ARGV[A + 1]: count, then per run it holds: run, token, packed {host, flowKey, resources...},
 * its RunRecord JSON. A run whose token is still its own: 'ok'. A run the state has no token
 * for, neither ended nor reaped (its claim or hold was lost with the old primary), whose
 * resources nobody else holds: taken again with the same token, off the pending list if its
 * pend came back there, its record kept: 'restored'. One whose resources another run holds
 * while hosts still register: 'blocked' (ask again). Anything else: 'lost' (the host must
 * stop it). Then '--' and, per run the state has active on this host that it did not name
 * (its end was lost), run and token.
 */
const RESYNC = `
local host = ARGV[A]
local now = now_ms()
see_epoch(now)
local out = {'ok'}
local named = {}
for i = 0, tonumber(ARGV[A + 1]) - 1 do
  local b = A + 2 + i * 4
  local run, token, meta, record = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  named[run] = true
  local cur = redis.call('HGET', K.tokens, run)
  local how = 'lost'
  if cur == token then
    how = 'ok'
  elseif not cur then
    local phase = redis.call('HGET', K.phase, run)
    local m = unpack_list(meta)
    local free = (not phase or phase == 'pending') and m[1] == host
    local taken = false
    for j = 3, #m do
      local by = redis.call('HGET', K.held, m[j])
      if by and by ~= run then taken = true end
    end
    -- Held by another run while hosts still register: that run's end was lost too (the
    -- resource was free on the old primary when this claim took it), and its host may not
    -- have registered yet; ask again. Once claims resume, the other holder wins.
    if free and taken and settling(now) then
      how = 'blocked'
    elseif free and not taken then
      unpark(run)
      if redis.call('ZSCORE', K.pendOrder, run) then
        redis.call('ZREM', K.pendOrder, run)
        redis.call('HDEL', K.wokeFor, run)
        redis.call('HDEL', K.pendView, run)
        redis.call('HDEL', K.pendRecord, run)
      end
      if record ~= '' and redis.call('HEXISTS', K.records, run) == 0 then redis.call('HSET', K.records, run, record) end
      take(run, meta, m, tonumber(token), false)
      how = 'restored'
    end
  end
  out[#out + 1] = run
  out[#out + 1] = how
end
out[#out + 1] = '--'
local all = redis.call('HGETALL', K.active)
for i = 1, #all, 2 do
  local run = all[i]
  if not named[run] and unpack_list(all[i + 1])[1] == host then
    out[#out + 1] = run
    out[#out + 1] = redis.call('HGET', K.tokens, run) or '0'
  end
end
bump()
return out
`;

const state = (name: string, body: string) => new LuaScript(name, stateScript(body));

export const SCRIPTS = Object.freeze({
  addPend: state("addPend", ADD_PEND),
  removePend: state("removePend", REMOVE_PEND),
  claim: state("claim", CLAIM),
  hold: state("hold", HOLD),
  release: state("release", RELEASE),
  park: state("park", PARK),
  unparkHeads: state("unparkHeads", UNPARK_HEADS),
  snapshot: state("snapshot", SNAPSHOT),
  resync: state("resync", RESYNC),
  wake: state("wake", WAKE),
  ...HOST_SCRIPTS,
  ...INDEX_SCRIPTS,
});

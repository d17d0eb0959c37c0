/**
 * The host registry's scripts of the Redis cluster state (store/redis-scripts.ts has the
 * conventions): a host's heartbeat — the lean renewal that changes nothing, and the whole
 * one — the reaper of hosts whose lease lapsed, and the registry read.
 */
import { LuaScript } from "./lua-script.js";
import { leanStateScript, stateScript } from "./redis-lua-prelude.js";

/** What every renewal writes: the lease, its end in the sorted sets, the host's record (ARGV as HEARTBEAT's). */
const RENEW_LEASE = `
redis.call('HSET', K.leases, name, num(now + tonumber(ARGV[A + 3])))
redis.call('ZADD', K.leaseEnd, num(now + tonumber(ARGV[A + 3])), name)
redis.call('ZADD', K.reapAt, num(now + tonumber(ARGV[A + 3]) + tonumber(ARGV[A + 4])), name)
redis.call('HSET', K.hosts, name, ARGV[A + 1])`;

/** The value a host follows (KEYS[NT + 1], when given: ClusterState.followValue): whether it is set, and it. */
const FOLLOWED = `local fv = KEYS[NT + 1] and redis.call('GET', KEYS[NT + 1]) or false`;
const FOLLOWED_OUT = `fv and '1' or '', fv or ''`;

/**
 * The earliest time any host's runs may be reaped: until then a reap has nothing to do, and
 * the host need not run one (RedisClusterState.reapDead).
 */
const FIRST_REAP = `(redis.call('ZRANGE', K.reapAt, 0, 0, 'WITHSCORES')[2] or '')`;

/** How many hosts the registry holds, live or not (until removed): a host's ticks are spread by it (hub/tick-phase.ts). */
const REGISTERED = `redis.call('ZCARD', K.leaseEnd)`;

const HEARTBEAT = `
local name = ARGV[A]
local now = now_ms()
see_epoch(now)
local prev = redis.call('HGET', K.leases, name)
local tags = ARGV[A + 5]
${RENEW_LEASE}
local out = 'renewed'
if not prev then out = 'new' elseif tonumber(prev) < now then out = 'expired' end
-- A host that (re)joins, or whose tags or slots changed, may run what waited for it.
local changed = out ~= 'renewed' or redis.call('HGET', K.hostTags, name) ~= tags or redis.call('HGET', K.slots, name) ~= ARGV[A + 2]
redis.call('HSET', K.slots, name, ARGV[A + 2])
redis.call('HSET', K.hostTags, name, tags)
redis.call('ZADD', K.slotRank, ARGV[A + 2], name)
if changed then
  unpark_for(tags)
  slots_freed(tags, free_slots(name))
  bump()
  bump_hosts(now)
end
${FOLLOWED}
return { out, ${FIRST_REAP}, num(now), ${FOLLOWED_OUT}, ${REGISTERED} }
`;

/**
 * A heartbeat that changes nothing dispatch reads — the host's lease has not lapsed, its
 * tags and slots are as registered, and the failover epoch is the one the state has seen —
 * is this, with no prelude: it is most of what Redis does for an idle cluster (every host,
 * three times a lease). It writes what HEARTBEAT writes in that case; anything else
 * answers 'slow', and the caller sends HEARTBEAT.
 */
const RENEW = `
local name, tags = ARGV[A], ARGV[A + 5]
if EPOCH ~= '' and redis.call('GET', K.tokenEpoch) ~= EPOCH then return { 'slow' } end
local now = now_ms()
local prev = redis.call('HGET', K.leases, name)
if not prev or tonumber(prev) < now then return { 'slow' } end
if redis.call('HGET', K.hostTags, name) ~= tags or redis.call('HGET', K.slots, name) ~= ARGV[A + 2] then return { 'slow' } end
${RENEW_LEASE}
${FOLLOWED}
return { 'renewed', ${FIRST_REAP}, num(now), ${FOLLOWED_OUT}, ${REGISTERED} }
`;

/** Returns 'ok', then run, token, packed {host, flowKey, resources...} per reaped run. */
const REAP = `
local reply = KEYS[NT + 1]
if redis.call('EXISTS', reply) == 1 then return redis.call('LRANGE', reply, 0, -1) end
local now = now_ms()
see_epoch(now)
local forget_before = now - tonumber(ARGV[A])
local out = {'ok'}
-- After a failover a host's lease may look lapsed for renewals the old primary lost.
if settling(now) then return out end
local dead, any = {}, false
-- Only hosts whose reap time passed: a sorted set, so a reap with none costs O(log hosts).
for _, h in ipairs(redis.call('ZRANGEBYSCORE', K.reapAt, '-inf', num(now))) do
  if tonumber(redis.call('HGET', K.running, h) or '0') > 0 then
    dead[h] = true
    any = true
  elseif tonumber(redis.call('ZSCORE', K.reapAt, h)) < forget_before then
    -- Dead for longer than the registry keeps hosts, with nothing left to reap: forgotten.
    redis.call('HDEL', K.hosts, h)
    redis.call('HDEL', K.leases, h)
    redis.call('ZREM', K.leaseEnd, h)
    bump_hosts(now)
    redis.call('HDEL', K.slots, h)
    redis.call('HDEL', K.hostTags, h)
    redis.call('ZREM', K.reapAt, h)
    redis.call('ZREM', K.slotRank, h)
  end
end
if any then
  local all = redis.call('HGETALL', K.active)
  for i = 1, #all, 2 do
    local run, meta = all[i], all[i + 1]
    if dead[unpack_list(meta)[1]] then
      local token = drop(run)
      ended(run, 'reaped', now, PHASE_TTL)
      out[#out + 1] = run
      out[#out + 1] = token
      out[#out + 1] = meta
    end
  end
  bump()
end
prune(now)
keep_reply(reply, out)
return out
`;

const HOSTS = `
return { tostring(now_ms()), redis.call('HGETALL', K.hosts), redis.call('HGETALL', K.leases) }
`;

const state = (name: string, body: string) => new LuaScript(name, stateScript(body));

export const HOST_SCRIPTS = Object.freeze({
  heartbeat: state("heartbeat", HEARTBEAT),
  renew: new LuaScript("renew", leanStateScript(RENEW)),
  reap: state("reapDead", REAP),
  hosts: state("hosts", HOSTS),
});

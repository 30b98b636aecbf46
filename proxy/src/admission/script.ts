/**
 * Admission, atomically for a whole account path (all keys share the {root} hash tag).
 *
 * KEYS, per account i (8 each): account hash, holds zset, hold amounts hash, leases zset,
 *   lease amounts hash, rpm counter, tpm counter, hold costs hash; then the key's rpm counter
 *   and tpm counter.
 * ARGV: [1] accounts, [2] now (ms), [3] hold id, [4] hold expiry (ms), [5] tokens to count,
 *   [6] key rpm limit or '', [7] key tpm limit or '', [8] ms until the minute window ends,
 *   [9] lease id or '' (no lease), [10] lease expiry (ms), [11] units a lease would take,
 *   [12] the fewest units worth a lease, [13] share: a lease takes at most 1/share of any
 *   account's funds or any window's remainder,
 *   [13+i] the hold amount for account i (nano-USD, at that account's own price).
 *
 * A unit is one request of this size: its hold amounts, one request and its tokens. When a
 * lease is asked for and at least the fewest units fit within the share of every limit, the
 * node gets a lease of that many units (funds moved to `leased`, requests and tokens counted
 * in the windows now) and admits against it in memory. Otherwise this request alone is
 * admitted with its own hold, exactly as without leases: near the end of the funds or of a
 * window, every request is decided here.
 *
 * Nothing is written unless every check passes. Funds of an account are
 * credited − spent − held − leased + credit line. Lua computes them in doubles, which is exact
 * up to 2^53 nano-USD (about $9M) per account; beyond that the gate may be off by a few
 * nano-USD, never the balance itself (HINCRBY keeps integers).
 *
 * Returns {'ok' | 'lease', units, keyRpmRemaining, keyTpmRemaining} or {reason, account index
 * or limit, retry ms}: 'funds' when the account cannot pay even once what is reserved comes
 * back, 'reserved' when only holds and leases of requests in flight stand in the way,
 * 'too_large' (limit, tokens) when the request alone exceeds a TPM limit in any window.
 */
export const admitLua = `
local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local tokens = tonumber(ARGV[5])
local windowLeft = tonumber(ARGV[8])
local leaseId = ARGV[9]
local minUnits = tonumber(ARGV[12])
local share = tonumber(ARGV[13])
local units = tonumber(ARGV[11])
if leaseId == '' then units = 0 end
local function field(v) if v == false or v == nil or v == '' then return nil end return tonumber(v) end
local function expire(zset, amounts, acct, counter, costs)
  local expired = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', 0, 100)
  for _, h in ipairs(expired) do
    local a = redis.call('HGET', amounts, h)
    if a then
      redis.call('HINCRBY', acct, counter, string.format('%d', -tonumber(a)))
      redis.call('HDEL', amounts, h)
    end
    if costs then
      local c = redis.call('HGET', costs, h)
      if c then
        redis.call('HINCRBY', acct, 'settling', string.format('%d', -tonumber(c)))
        redis.call('HDEL', costs, h)
      end
    end
    redis.call('ZREM', zset, h)
  end
end
local function room(limit, used, per)
  if per <= 0 then return units end
  return math.floor((limit - used) / (share * per))
end

for i = 1, n do
  local b = (i - 1) * 8
  expire(KEYS[b + 2], KEYS[b + 3], KEYS[b + 1], 'held', KEYS[b + 8])
  expire(KEYS[b + 4], KEYS[b + 5], KEYS[b + 1], 'leased', nil)
end

for i = 1, n do
  local b = (i - 1) * 8
  local f = redis.call('HMGET', KEYS[b + 1], 'status', 'credited', 'spent', 'held', 'creditLimitNano', 'rpm', 'tpm', 'leased', 'settling')
  if f[1] ~= 'active' then return {'disabled', i, 0} end
  local rpm, tpm = field(f[6]), field(f[7])
  if tpm and tokens > tpm then return {'too_large', tpm, tokens} end
  local amount = tonumber(ARGV[13 + i])
  local held, leased = field(f[4]) or 0, field(f[8]) or 0
  local available = (field(f[2]) or 0) - (field(f[3]) or 0) - held - leased + (field(f[5]) or 0)
  if amount > 0 and available < amount then
    -- Funds reserved by requests still running (or by leases) come back as those finish: wait,
    -- not no. What finished requests cost (settling) is spent, not reserved.
    if available + held - (field(f[9]) or 0) + leased >= amount then return {'reserved', i, 0} end
    return {'funds', i, 0}
  end
  units = math.min(units, room(available, 0, amount))
  if rpm then
    local used = field(redis.call('GET', KEYS[b + 6])) or 0
    if used + 1 > rpm then return {'rpm', rpm, windowLeft} end
    units = math.min(units, room(rpm, used, 1))
  end
  if tpm then
    local used = field(redis.call('GET', KEYS[b + 7])) or 0
    if used + tokens > tpm then return {'tpm', tpm, windowLeft} end
    units = math.min(units, room(tpm, used, tokens))
  end
end
local keyRpm, keyTpm = field(ARGV[6]), field(ARGV[7])
local kr = KEYS[n * 8 + 1]
local kt = KEYS[n * 8 + 2]
local usedR = field(redis.call('GET', kr)) or 0
local usedT = field(redis.call('GET', kt)) or 0
if keyTpm and tokens > keyTpm then return {'too_large', keyTpm, tokens} end
if keyRpm then
  if usedR + 1 > keyRpm then return {'rpm', keyRpm, windowLeft} end
  units = math.min(units, room(keyRpm, usedR, 1))
end
if keyTpm then
  if usedT + tokens > keyTpm then return {'tpm', keyTpm, windowLeft} end
  units = math.min(units, room(keyTpm, usedT, tokens))
end

-- Offsets of the zset and amounts hash within an account's keys.
local verdict, id, expiry, zset, amounts, counter = 'ok', ARGV[3], ARGV[4], 2, 3, 'held'
if units >= minUnits and units > 0 then
  verdict, id, expiry, zset, amounts, counter = 'lease', leaseId, ARGV[10], 4, 5, 'leased'
else
  units = 1
end
local ttl = math.ceil(windowLeft / 1000) + 60
for i = 1, n do
  local b = (i - 1) * 8
  local amount = string.format('%d', tonumber(ARGV[13 + i]) * units)
  if tonumber(amount) > 0 then
    redis.call('HSET', KEYS[b + amounts], id, amount)
    redis.call('ZADD', KEYS[b + zset], expiry, id)
    redis.call('HINCRBY', KEYS[b + 1], counter, amount)
  end
  redis.call('INCRBY', KEYS[b + 6], units); redis.call('EXPIRE', KEYS[b + 6], ttl)
  redis.call('INCRBY', KEYS[b + 7], string.format('%d', tokens * units)); redis.call('EXPIRE', KEYS[b + 7], ttl)
end
redis.call('INCRBY', kr, units); redis.call('EXPIRE', kr, ttl)
redis.call('INCRBY', kt, string.format('%d', tokens * units)); redis.call('EXPIRE', kt, ttl)
return {verdict, units, keyRpm and (keyRpm - usedR - units) or -1, keyTpm and (keyTpm - usedT - tokens * units) or -1}
`;

/**
 * Gives back what a node did not use of a lease, once it admits no more under it and none of
 * its requests is in flight; or all of a hold or lease that was never used (its write was not
 * confirmed by a replica, so its request was refused). The ledger takes each settled request's
 * cost out of a lease's entry, so the two subtractions meet at zero in either order; what a
 * crashed node never gives back is released when the entry expires.
 *
 * KEYS, per account i (5 each): account hash, leases (or holds) zset, their amounts hash, rpm
 *   counter, tpm counter (of the minute that counted them); then the key's rpm and tpm counters.
 * ARGV: [1] accounts, [2] lease or hold id, [3] the account field that sums them ('leased' or
 *   'held'), [4] unused requests, [5] unused tokens, [5+i] the unused amount for account i.
 */
export const releaseLua = `
local n = tonumber(ARGV[1])
local id = ARGV[2]
local counter = ARGV[3]
local function giveBack(k, x)
  if x <= 0 then return end
  local v = tonumber(redis.call('GET', k) or '0')
  if v > 0 then redis.call('DECRBY', k, math.min(v, x)) end
end
for i = 1, n do
  local b = (i - 1) * 5
  local held = tonumber(redis.call('HGET', KEYS[b + 3], id) or '0')
  local back = math.min(held, tonumber(ARGV[5 + i]))
  if held > 0 and back >= held then
    redis.call('HDEL', KEYS[b + 3], id)
    redis.call('ZREM', KEYS[b + 2], id)
    redis.call('HINCRBY', KEYS[b + 1], counter, string.format('%d', -held))
  elseif back > 0 then
    redis.call('HINCRBY', KEYS[b + 3], id, string.format('%d', -back))
    redis.call('HINCRBY', KEYS[b + 1], counter, string.format('%d', -back))
  end
  giveBack(KEYS[b + 4], tonumber(ARGV[4]))
  giveBack(KEYS[b + 5], tonumber(ARGV[5]))
end
giveBack(KEYS[n * 5 + 1], tonumber(ARGV[4]))
giveBack(KEYS[n * 5 + 2], tonumber(ARGV[5]))
return 1
`;

/**
 * Brings a finished request's hold down to its cost (see AdmissionScripts.shrinkHold), unless
 * the ledger has settled it already (its entry is gone; then nothing is left to do).
 *
 * KEYS, per account i (3 each): account hash, hold amounts hash, hold costs hash.
 * ARGV: [1] accounts, [2] hold id, [2+i] the request's cost for account i.
 */
export const shrinkLua = `
local n = tonumber(ARGV[1])
local id = ARGV[2]
for i = 1, n do
  local b = (i - 1) * 3
  local held = tonumber(redis.call('HGET', KEYS[b + 2], id) or '-1')
  local cost = tonumber(ARGV[2 + i])
  if held >= 0 and redis.call('HEXISTS', KEYS[b + 3], id) == 0 then
    if cost > held then cost = held end
    redis.call('HINCRBY', KEYS[b + 1], 'held', string.format('%d', cost - held))
    if cost > 0 then
      redis.call('HSET', KEYS[b + 2], id, string.format('%d', cost))
      redis.call('HSET', KEYS[b + 3], id, string.format('%d', cost))
      redis.call('HINCRBY', KEYS[b + 1], 'settling', string.format('%d', cost))
    else
      -- Nothing to settle: the hold is gone (its expiry entry finds no amount and is dropped).
      redis.call('HDEL', KEYS[b + 2], id)
    end
  end
end
return 1
`;

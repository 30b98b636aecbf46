/**
 * Admission, atomically for a whole account path (all keys share the {root} hash tag).
 *
 * KEYS, per account i (5 each): account hash, holds zset, hold amounts hash, rpm counter,
 *   tpm counter; then the key's rpm counter and tpm counter.
 * ARGV: [1] accounts, [2] now (ms), [3] hold id, [4] hold expiry (ms), [5] tokens to count,
 *   [6] key rpm limit or '', [7] key tpm limit or '', [8] ms until the minute window ends,
 *   [8+i] the hold amount for account i (nano-USD, at that account's own price).
 *
 * Nothing is written unless every check passes. Funds of an account are
 * credited − spent − held + credit line. Lua computes them in doubles, which is exact up to
 * 2^53 nano-USD (about $9M) per account; beyond that the gate may be off by a few nano-USD,
 * never the balance itself (HINCRBY keeps integers).
 *
 * Returns {'ok', keyRpmRemaining, keyTpmRemaining} or {reason, account index or limit, retry ms}.
 */
export const admitLua = `
local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local hold = ARGV[3]
local expiry = tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
local windowLeft = tonumber(ARGV[8])
local function field(v) if v == false or v == nil or v == '' then return nil end return tonumber(v) end

for i = 1, n do
  local b = (i - 1) * 5
  local acct, holds, amounts = KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 100)
  for _, h in ipairs(expired) do
    local a = redis.call('HGET', amounts, h)
    if a then
      redis.call('HINCRBY', acct, 'held', '-' .. a)
      redis.call('HDEL', amounts, h)
    end
    redis.call('ZREM', holds, h)
  end
end

for i = 1, n do
  local b = (i - 1) * 5
  local f = redis.call('HMGET', KEYS[b + 1], 'status', 'credited', 'spent', 'held', 'creditLimitNano', 'rpm', 'tpm')
  if f[1] ~= 'active' then return {'disabled', i, 0} end
  local amount = tonumber(ARGV[8 + i])
  local available = (field(f[2]) or 0) - (field(f[3]) or 0) - (field(f[4]) or 0) + (field(f[5]) or 0)
  if amount > 0 and available < amount then return {'funds', i, 0} end
  local rpm, tpm = field(f[6]), field(f[7])
  if rpm and (field(redis.call('GET', KEYS[b + 4])) or 0) + 1 > rpm then return {'rpm', rpm, windowLeft} end
  if tpm and (field(redis.call('GET', KEYS[b + 5])) or 0) + tokens > tpm then return {'tpm', tpm, windowLeft} end
end
local keyRpm, keyTpm = field(ARGV[6]), field(ARGV[7])
local kr = KEYS[n * 5 + 1]
local kt = KEYS[n * 5 + 2]
local usedR = field(redis.call('GET', kr)) or 0
local usedT = field(redis.call('GET', kt)) or 0
if keyRpm and usedR + 1 > keyRpm then return {'rpm', keyRpm, windowLeft} end
if keyTpm and usedT + tokens > keyTpm then return {'tpm', keyTpm, windowLeft} end

local ttl = math.ceil(windowLeft / 1000) + 60
for i = 1, n do
  local b = (i - 1) * 5
  local amount = ARGV[8 + i]
  if tonumber(amount) > 0 then
    redis.call('HSET', KEYS[b + 3], hold, amount)
    redis.call('ZADD', KEYS[b + 2], expiry, hold)
    redis.call('HINCRBY', KEYS[b + 1], 'held', amount)
  end
  redis.call('INCR', KEYS[b + 4]); redis.call('EXPIRE', KEYS[b + 4], ttl)
  redis.call('INCRBY', KEYS[b + 5], tokens); redis.call('EXPIRE', KEYS[b + 5], ttl)
end
redis.call('INCR', kr); redis.call('EXPIRE', kr, ttl)
redis.call('INCRBY', kt, tokens); redis.call('EXPIRE', kt, ttl)
return {'ok', keyRpm and (keyRpm - usedR - 1) or -1, keyTpm and (keyTpm - usedT - tokens) or -1}
`;

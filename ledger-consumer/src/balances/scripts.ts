/**
 * Redis Lua scripts of the ledger. All keys of one script share the {root} hash tag, so
 * each runs atomically on one node (and one Redis Cluster slot). Amounts travel as decimal
 * strings and are added with HINCRBY: integers all the way, never Lua doubles.
 */

/**
 * Settles one usage event for every account of its path, once.
 * KEYS[1]          applied marker of the event
 * KEYS[2+3(i-1)]   account hash i, then its holds zset, then its hold amounts hash
 * ARGV[1]          marker TTL (seconds); ARGV[2] hold id or ''; ARGV[2+i] cost of account i
 * Returns 1 when applied now, 0 when it had been applied before.
 */
export const settleUsageLua = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local hold = ARGV[2]
local n = (#KEYS - 1) / 3
for i = 1, n do
  local acct = KEYS[2 + (i - 1) * 3]
  local holds = KEYS[3 + (i - 1) * 3]
  local amounts = KEYS[4 + (i - 1) * 3]
  redis.call('HINCRBY', acct, 'spent', ARGV[2 + i])
  redis.call('HINCRBY', acct, 'requests', 1)
  if hold ~= '' then
    local amount = redis.call('HGET', amounts, hold)
    if amount then
      redis.call('HDEL', amounts, hold)
      redis.call('ZREM', holds, hold)
      redis.call('HINCRBY', acct, 'held', '-' .. amount)
    end
  end
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
`;

/**
 * Adds a credit to one account, once.
 * KEYS[1] applied marker, KEYS[2] account hash; ARGV[1] TTL, ARGV[2] amount (nano-USD).
 */
export const creditLua = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HINCRBY', KEYS[2], 'credited', ARGV[2])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
`;

import { LEASE_PREFIX } from '@yugong/schemas';

/**
 * Redis Lua scripts of the ledger. All keys of one script share the {root} hash tag, so
 * each runs atomically on one node (and one Redis Cluster slot). Amounts travel as decimal
 * strings and are added with HINCRBY: integers all the way, never Lua doubles.
 */

/**
 * Settles usage events of one account tree, each once, in order. One call carries many
 * events so that Redis runs one script (and the consumer builds one command) per tree and
 * chunk instead of per event.
 * For each event e, in order:
 *   KEYS  its applied marker, then per account i of its path: the account hash, its holds
 *         zset, its hold amounts hash, its leases zset, its lease amounts hash, its hold
 *         costs hash (a hold the node brought down to its cost counts in `settling` too)
 *   ARGV  (after ARGV[1], the marker TTL in seconds) n = accounts in the path, the hold id
 *         or '', then the cost of each account
 * Returns how many events were applied now (the others had been applied before).
 */
export const settleUsageLua = `
local ttl = ARGV[1]
local k, a, applied = 1, 2, 0
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local hold = ARGV[a + 1]
  if redis.call('EXISTS', KEYS[k]) == 0 then
    for i = 1, n do
      local base = k + 1 + (i - 1) * 6
      local acct = KEYS[base]
      redis.call('HINCRBY', acct, 'spent', ARGV[a + 1 + i])
      redis.call('HINCRBY', acct, 'requests', 1)
      if hold ~= '' and string.sub(hold, 1, ${LEASE_PREFIX.length}) ~= '${LEASE_PREFIX}' then
        local amount = redis.call('HGET', KEYS[base + 2], hold)
        if amount then
          redis.call('HDEL', KEYS[base + 2], hold)
          redis.call('ZREM', KEYS[base + 1], hold)
          redis.call('HINCRBY', acct, 'held', string.format('%d', -tonumber(amount)))
        end
        local known = redis.call('HGET', KEYS[base + 5], hold)
        if known then
          redis.call('HDEL', KEYS[base + 5], hold)
          redis.call('HINCRBY', acct, 'settling', string.format('%d', -tonumber(known)))
        end
      elseif hold ~= '' then
        -- A node's lease: the cost moves from leased to spent; the node gives back the rest.
        local leased = tonumber(redis.call('HGET', KEYS[base + 4], hold) or '0')
        local cost = tonumber(ARGV[a + 1 + i])
        if leased > 0 and cost >= leased then
          redis.call('HDEL', KEYS[base + 4], hold)
          redis.call('ZREM', KEYS[base + 3], hold)
          redis.call('HINCRBY', acct, 'leased', string.format('%d', -leased))
        elseif leased > 0 and cost > 0 then
          redis.call('HINCRBY', KEYS[base + 4], hold, '-' .. ARGV[a + 1 + i])
          redis.call('HINCRBY', acct, 'leased', '-' .. ARGV[a + 1 + i])
        end
      end
    end
    redis.call('SET', KEYS[k], '1', 'EX', ttl)
    applied = applied + 1
  end
  k = k + 1 + 6 * n
  a = a + 2 + n
end
return applied
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

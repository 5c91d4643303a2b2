"""The Redis Lua scripts: each runs atomically on the server, on Redis's own clock.

Keys of one subject share the hash tag ``{subject}`` so they live in one Redis Cluster
slot. Layout (``P`` is the configured prefix)::

    P:{subject}:rq          ZSET  admission id → admitted at (ms)         requests window
    P:{subject}:tk          ZSET  "id:tokens" → admitted at (ms)           tokens window
    P:{subject}:tt          STR   sum of the tokens in :tk
    P:{subject}:cc          ZSET  admission id → lease expiry (ms)         concurrency
    P:{subject}:sd:<day>    STR   nano-dollars spent that UTC day
    P:{subject}:sm:<month>  STR   nano-dollars spent that UTC month

A limit of -1 means "not limited": its keys are neither read nor written. A budget
counter that does not exist starts at the spend the request log has (ARGV 13/14), so a
flushed or restarted Redis does not hand out a fresh budget.
"""

from __future__ import annotations

ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local conc, lease = tonumber(ARGV[5]), tonumber(ARGV[6])
local dbud, mbud, cost = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local window = tonumber(ARGV[12])
local cutoff = now - window
local refused, wait = '', 0
local rq_count, rq_reset, tk_total, tk_reset = -1, 0, -1, 0
local function refuse(what, ms)
  if refused == '' then refused = what; wait = ms end
end
local function n(x) return string.format('%.0f', x) end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  rq_count = redis.call('ZCARD', KEYS[1])
  if rq_count > 0 then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    rq_reset = tonumber(oldest[2]) + window - now
  end
  if rq_count + 1 > rpm then refuse('requests', rq_reset) end
end
if tpm >= 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  if #old > 0 then
    local freed = 0
    for _, m in ipairs(old) do freed = freed + tonumber(string.match(m, ':(%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
    redis.call('DECRBY', KEYS[3], n(freed))
  end
  tk_total = tonumber(redis.call('GET', KEYS[3]) or '0')
  local excess = tk_total + tokens - tpm
  if excess > 0 then
    tk_reset = window
    local entries = redis.call('ZRANGE', KEYS[2], 0, 999, 'WITHSCORES')
    for i = 1, #entries, 2 do
      excess = excess - tonumber(string.match(entries[i], ':(%d+)$'))
      if excess <= 0 then
        tk_reset = tonumber(entries[i + 1]) + window - now
        break
      end
    end
    refuse('tokens', tk_reset)
  end
end
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  if redis.call('ZCARD', KEYS[4]) >= conc then refuse('concurrency', 1000) end
end
local function spent(key, logged, ttl)
  local value = redis.call('GET', key)
  if value then return tonumber(value) end
  -- No counter (new period, or Redis lost it): start from the request log's total.
  redis.call('SET', key, n(logged), 'EX', ttl)
  return logged
end
if dbud >= 0 and spent(KEYS[5], tonumber(ARGV[13]), 2 * 86400) + cost > dbud then
  refuse('daily_budget', tonumber(ARGV[10]))
end
if mbud >= 0 and spent(KEYS[6], tonumber(ARGV[14]), 32 * 86400) + cost > mbud then
  refuse('monthly_budget', tonumber(ARGV[11]))
end
if refused ~= '' then
  return {0, refused, wait, rq_count, rq_reset, tk_total, tk_reset}
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('PEXPIRE', KEYS[1], 2 * window)
end
if tpm >= 0 then
  redis.call('ZADD', KEYS[2], now, id .. ':' .. n(tokens))
  redis.call('INCRBY', KEYS[3], n(tokens))
  redis.call('PEXPIRE', KEYS[2], 2 * window)
  redis.call('PEXPIRE', KEYS[3], 2 * window)
end
if conc >= 0 then
  redis.call('ZADD', KEYS[4], now + lease, id)
  redis.call('PEXPIRE', KEYS[4], 2 * lease)
end
if dbud >= 0 then
  redis.call('INCRBY', KEYS[5], n(cost))
  redis.call('EXPIRE', KEYS[5], 2 * 86400)
end
if mbud >= 0 then
  redis.call('INCRBY', KEYS[6], n(cost))
  redis.call('EXPIRE', KEYS[6], 32 * 86400)
end
-- Admitted: the windows reset when their oldest entry (maybe this one) leaves them.
if rpm >= 0 and rq_count == 0 then rq_reset = window end
if tpm >= 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  tk_reset = tonumber(oldest[2]) + window - now
end
return {1, '', 0, rq_count, rq_reset, tk_total, tk_reset}
"""

SETTLE = """
local function n(x) return string.format('%.0f', x) end
local id = ARGV[1]
if ARGV[6] == '1' then
  local old = id .. ':' .. ARGV[2]
  local score = redis.call('ZSCORE', KEYS[1], old)
  if score then
    redis.call('ZREM', KEYS[1], old)
    redis.call('ZADD', KEYS[1], score, id .. ':' .. ARGV[3])
    redis.call('INCRBY', KEYS[2], n(tonumber(ARGV[3]) - tonumber(ARGV[2])))
  end
end
if ARGV[7] == '1' then redis.call('ZREM', KEYS[3], id) end
local delta = tonumber(ARGV[5]) - tonumber(ARGV[4])
if delta ~= 0 then
  if ARGV[8] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('INCRBY', KEYS[4], n(delta))
  end
  if ARGV[9] == '1' and redis.call('EXISTS', KEYS[5]) == 1 then
    redis.call('INCRBY', KEYS[5], n(delta))
  end
end
return 1
"""

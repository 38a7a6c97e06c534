"""The Lua scripts of the shared rate-limit budget (:mod:`._redis_limits`), one atomic step each.

Every change to the shared state is one script, so concurrent processes never see a half-done
update; times come from Redis's own ``TIME``, so machines with skewed clocks still agree.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "BUCKETS", "REFRESH", "RELEASE", "bucket_args"]

# KEYS: leases, wake. ARGV: lease id, ttl ms, max in flight. Returns 1 when granted.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local reaped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 4)
local spare = math.min(reaped, limit - held - 1)
if spare > 0 then
  for i = 1, spare do
    redis.call('LPUSH', KEYS[2], '1')
  end
  redis.call('LTRIM', KEYS[2], 0, limit - 1)
  redis.call('PEXPIRE', KEYS[2], ttl * 4)
end
return 1
"""

# KEYS: leases, wake. ARGV: lease id, max in flight, ttl ms.
RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) * 4)
  return 1
end
return 0
"""

# KEYS: leases. ARGV: ttl ms, lease ids... Returns the ids that were no longer held.
REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 4)
return lost
"""

# KEYS: requests bucket, tokens bucket. ARGV: per bucket (rate per ms, capacity, amount); a rate
# of 0 skips that bucket. Returns the wait in ms (as a string: Lua numbers become integers).
BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function take(key, rate, cap, amount)
  if rate <= 0 or amount == 0 then
    return 0
  end
  local state = redis.call('HMGET', key, 'level', 'stamp')
  local level = tonumber(state[1]) or cap
  local stamp = tonumber(state[2]) or now
  if now > stamp then
    level = math.min(cap, level + (now - stamp) * rate)
    stamp = now
  end
  level = math.min(cap, level - amount)
  redis.call('HSET', key, 'level', tostring(level), 'stamp', tostring(stamp))
  redis.call('PEXPIRE', key, math.ceil(math.max(cap, -level) / rate) + 60000)
  if level >= 0 then
    return 0
  end
  return -level / rate
end
local a = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
local b = take(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
return tostring(math.max(a, b))
"""


def bucket_args(per_minute: float | None, burst_s: float) -> list[float]:
    """(rate per ms, capacity) of a bucket, or (0, 0) for none: the same sizes as local buckets."""
    if per_minute is None:
        return [0.0, 0.0]
    per_second = per_minute / 60.0
    return [per_second / 1000.0, max(1.0, per_second * burst_s)]

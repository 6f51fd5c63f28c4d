"""Rate limits (GCRA) and login lock-out, in memory or shared through Redis.

GCRA (the generic cell rate algorithm) keeps one number per key, the theoretical arrival time
(TAT): a request is allowed while TAT - now stays within the burst tolerance. That is O(1) and
one float per key, so the in-memory limiter costs a dict lookup on the proxy's hot path. With
several gateway replicas the same algorithm runs inside Redis as one Lua script (atomic, and it
reads Redis' own clock so replicas with skewed clocks still agree).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_SWEEP_AT = 100_000  # in-memory keys; beyond this, idle keys (TAT in the past) are dropped


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` sustained, bursts of up to `burst` requests."""

    per_second: float
    burst: int

    @property
    def interval(self) -> float:
        """Seconds between requests at the sustained rate (GCRA's emission interval)."""
        return 1.0 / self.per_second


@dataclass(frozen=True, slots=True)
class Lockout:
    """After `threshold` failures, lock for base * 2^(extra failures) seconds, up to `cap`."""

    threshold: int
    base_seconds: float
    cap_seconds: float
    window_seconds: float  # failures older than this are forgotten

    def lock_for(self, failures: int) -> float:
        """How long to lock after this many consecutive failures."""
        if failures < self.threshold:
            return 0.0
        return min(self.cap_seconds, self.base_seconds * 2 ** (failures - self.threshold))


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, never 0 (a client retrying at once would be refused)."""
    return str(max(1, math.ceil(seconds)))


class MemoryLimiter:
    """Per-process limits: exact, O(1), allocation-light; not shared between replicas."""

    local = True

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._failures: dict[str, tuple[int, float, float]] = {}  # key -> (n, last, locked_until)

    def hit_now(self, key: str, rate: Rate) -> float:
        """0.0 when allowed (and counted), else seconds until a retry can succeed."""
        now = time.monotonic()
        tat = self._tat.get(key, now)
        if tat < now:
            tat = now
        interval = 1.0 / rate.per_second
        new_tat = tat + interval
        excess = new_tat - now - rate.burst * interval
        if excess > 0:
            return excess
        if len(self._tat) >= _SWEEP_AT:
            self._sweep(now)
        self._tat[key] = new_tat
        return 0.0

    async def hit(self, key: str, rate: Rate) -> float:
        """hit_now, awaitable like the Redis limiter's."""
        return self.hit_now(key, rate)

    def _sweep(self, now: float) -> None:
        self._tat = {k: v for k, v in self._tat.items() if v > now}

    async def locked(self, key: str) -> float:
        """Seconds this key stays locked out (0.0 when not locked)."""
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry[2] - time.monotonic())

    async def fail(self, key: str, lockout: Lockout) -> float:
        """Count a failed login; the lock (seconds) it now triggers, 0.0 if none."""
        now = time.monotonic()
        n, last, _ = self._failures.get(key, (0, now, 0.0))
        if now - last > lockout.window_seconds:
            n = 0
        n += 1
        lock = lockout.lock_for(n)
        if len(self._failures) >= _SWEEP_AT:
            self._failures = {
                k: v for k, v in self._failures.items() if now - v[1] <= lockout.window_seconds
            }
        self._failures[key] = (n, now, now + lock)
        return lock

    async def clear(self, key: str) -> None:
        """Forget failures after a successful login."""
        self._failures.pop(key, None)

    async def close(self) -> None:
        """Nothing to release."""


_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local excess = new_tat - now - burst * interval
if excess > 0 then return tostring(excess) end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1)
return '0'
"""

_LOCKED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = tonumber(redis.call('HGET', KEYS[1], 'until') or 0)
if until_ > now then return tostring(until_ - now) end
return '0'
"""

_FAIL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local threshold = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local lock = 0
if n >= threshold then lock = math.min(cap, base * 2 ^ (n - threshold)) end
redis.call('HSET', KEYS[1], 'until', tostring(now + lock))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(window, lock) * 1000))
return tostring(lock)
"""


class RedisLimiter:
    """Limits shared by every gateway replica, one atomic Lua script per decision.

    If Redis is unreachable the request is allowed (fail open, logged): an outage of the limit
    store should not take the whole API down with it.
    """

    local = False

    def __init__(self, url: str, *, prefix: str = "hearth:gw:") -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.Redis.from_url(url)
        self._prefix = prefix
        self._gcra = self._redis.register_script(_GCRA)
        self._locked = self._redis.register_script(_LOCKED)
        self._fail = self._redis.register_script(_FAIL)

    def hit_now(self, key: str, rate: Rate) -> float:
        """Not available: Redis needs an await (the proxy checks `local` first)."""
        raise NotImplementedError

    async def hit(self, key: str, rate: Rate) -> float:
        """0.0 when allowed (and counted), else seconds until a retry can succeed."""
        try:
            result = await self._gcra(
                keys=[self._prefix + "rl:" + key], args=[repr(1.0 / rate.per_second), rate.burst]
            )
        except Exception as exc:  # redis.RedisError, OSError
            log.warning("rate limit store unavailable, allowing: %r", exc)
            return 0.0
        return float(result)

    async def locked(self, key: str) -> float:
        """Seconds this key stays locked out (0.0 when not locked)."""
        try:
            return float(await self._locked(keys=[self._prefix + "lo:" + key]))
        except Exception as exc:
            log.warning("lock-out store unavailable: %r", exc)
            return 0.0

    async def fail(self, key: str, lockout: Lockout) -> float:
        """Count a failed login; the lock (seconds) it now triggers, 0.0 if none."""
        try:
            result = await self._fail(
                keys=[self._prefix + "lo:" + key],
                args=[
                    lockout.threshold,
                    repr(lockout.base_seconds),
                    repr(lockout.cap_seconds),
                    repr(lockout.window_seconds),
                ],
            )
        except Exception as exc:
            log.warning("lock-out store unavailable: %r", exc)
            return 0.0
        return float(result)

    async def clear(self, key: str) -> None:
        """Forget failures after a successful login."""
        try:
            await self._redis.delete(self._prefix + "lo:" + key)
        except Exception as exc:
            log.warning("lock-out store unavailable: %r", exc)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


Limiter = MemoryLimiter | RedisLimiter

"""The cache: Redis in services mode, a process-local dict in embedded mode.

It holds only what may be lost (rate-limit windows, circuit-breaker state): Redis runs with
``allkeys-lru`` and no persistence. Anything that must last lives in the database.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Cache(Protocol):
    """What the service needs from a cache: counters and values that may vanish at any time."""

    kind: str

    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Count a hit in the current fixed window; (hits so far, seconds until it resets)."""
        ...

    async def get(self, key: str) -> str | None:
        """The value at ``key``, or None when it is absent or expired."""
        ...

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Store ``value`` at ``key``, dropped after ``ttl_seconds`` (kept without one)."""
        ...

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        """Add one to the counter at ``key`` and return it; its TTL starts at its first hit."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key``; an absent key is no error."""
        ...

    async def ping(self) -> None:
        """Raise when the cache cannot be reached (the readiness check)."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class MemoryCache:
    """In-process stand-in for Redis (embedded mode: one process)."""

    kind = "memory"

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()  # shared by the API's and the workers' event loops

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, float]:
        """The window's hits: a counter named by the window's number, kept as long as the window."""
        now = time.time()
        window = int(now // window_seconds)
        hits = await self.incr(f"{key}:{window}", window_seconds)
        return hits, window_seconds - (now % window_seconds)

    async def get(self, key: str) -> str | None:
        """The live value; an expired one is dropped on the way."""
        return self._live(key)

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Expiry on the monotonic clock; without a TTL the value lasts as long as the process."""
        expires = time.monotonic() + ttl_seconds if ttl_seconds else None
        self._data[key] = (value, expires)

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        """Counted under the lock: the API's and the workers' event loops share the dict."""
        with self._lock:
            current = int(self._live(key) or 0) + 1
            old = self._data.get(key)
            expires = old[1] if old and current > 1 else None
            if expires is None and ttl_seconds:
                expires = time.monotonic() + ttl_seconds
            self._data[key] = (str(current), expires)
            return current

    async def delete(self, key: str) -> None:
        """Drop ``key`` if it is there."""
        self._data.pop(key, None)

    async def ping(self) -> None:
        """Always reachable: it lives in this process."""

    async def close(self) -> None:
        """Nothing to release."""


class RedisCache:
    """Redis through redis.asyncio; keys are namespaced with ``prefix``."""

    kind = "redis"

    def __init__(self, url: str, prefix: str = "pixtools:") -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
        )
        self.prefix = prefix

    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, float]:
        """INCR and EXPIRE in one transaction; the key outlives its window by a second."""
        now = time.time()
        window = int(now // window_seconds)
        full = f"{self.prefix}{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(full)
            pipe.expire(full, window_seconds + 1)
            hits, _ = await pipe.execute()
        return int(hits), window_seconds - (now % window_seconds)

    async def get(self, key: str) -> str | None:
        """GET of the prefixed key."""
        value = await self._redis.get(self.prefix + key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """SET with a millisecond expiry (PX)."""
        px = int(ttl_seconds * 1000) if ttl_seconds else None
        await self._redis.set(self.prefix + key, value, px=px)

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        """INCR; the first hit sets the expiry, so later hits do not extend it."""
        full = self.prefix + key
        value = int(await self._redis.incr(full))
        if value == 1 and ttl_seconds:
            await self._redis.pexpire(full, int(ttl_seconds * 1000))
        return value

    async def delete(self, key: str) -> None:
        """DEL of the prefixed key."""
        await self._redis.delete(self.prefix + key)

    async def ping(self) -> None:
        """PING; raises when Redis cannot be reached."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

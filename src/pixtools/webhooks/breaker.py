"""A per-destination circuit breaker whose state lives in the shared cache (all workers).

Closed: deliveries go out. After ``threshold`` consecutive failures it opens for
``reset_timeout`` seconds; then one delivery is let through (half-open): success closes it,
failure opens it again.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from pixtools.store.cache import Cache


def destination(url: str) -> str:
    """The breaker's key for ``url``: scheme, host and port (the default port when none)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


class CircuitBreaker:
    """Open, half-open and closed per destination, counted in the shared cache."""

    def __init__(self, cache: Cache, *, threshold: int, reset_timeout: float) -> None:
        self.cache = cache
        self.threshold = threshold
        self.reset_timeout = reset_timeout

    def _keys(self, dest: str) -> tuple[str, str, str]:
        return f"cb:fail:{dest}", f"cb:open:{dest}", f"cb:probe:{dest}"

    async def allow(self, dest: str) -> tuple[bool, float]:
        """(may deliver now, seconds until it may try again if not)."""
        _, open_key, probe_key = self._keys(dest)
        opened = await self.cache.get(open_key)
        if opened is None:
            return True, 0.0
        remaining = float(opened) + self.reset_timeout - time.time()
        if remaining > 0:
            return False, remaining
        # Half-open: exactly one caller wins the probe slot for a while.
        if await self.cache.incr(probe_key, ttl_seconds=self.reset_timeout) == 1:
            return True, 0.0
        return False, self.reset_timeout

    async def success(self, dest: str) -> bool:
        """Close the breaker; True when it was open (a half-open probe succeeded)."""
        was_open = await self.cache.get(self._keys(dest)[1]) is not None
        for key in self._keys(dest):
            await self.cache.delete(key)
        return was_open

    async def failure(self, dest: str) -> bool:
        """Count a failure; True when the breaker is (now) open."""
        fail_key, open_key, probe_key = self._keys(dest)
        failures = await self.cache.incr(fail_key, ttl_seconds=24 * 3600)
        half_open = await self.cache.get(open_key) is not None
        if half_open or failures >= self.threshold:
            await self.cache.set(open_key, str(time.time()), ttl_seconds=24 * 3600)
            await self.cache.delete(probe_key)
            return True
        return False

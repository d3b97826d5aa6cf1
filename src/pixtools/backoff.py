"""The one retry delay of PixTools: exponential, capped, with full jitter by default.

Output retries, webhook deliveries and outbox publishing wait by it (each with its own base
and cap). It imports nothing of ours, so every room may use it.
"""

from __future__ import annotations

import random

MAX_DOUBLINGS = 64  # past this every cap has long been reached; keeps 2.0**n finite


def backoff(attempt: int, base: float, cap: float, *, jitter: bool = True) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first failure):
    ``min(cap, base * 2**(attempt-1))``; with ``jitter``, uniform in [0, that] (full jitter)."""
    ceiling = min(cap, base * 2.0 ** min(max(0, attempt - 1), MAX_DOUBLINGS))
    return random.uniform(0, ceiling) if jitter else ceiling

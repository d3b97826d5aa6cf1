"""A process-wide memory budget for renders: each render reserves what it is estimated to
need before it decodes, and waits (first come, first served) while the renders running hold
too much.

The pixel limit bounds one render (a 50 MP AVIF output takes about 1 GB to encode), not how
many run at once: five worker threads each rendering a 1x1 PNG to 6900x6900 AVIF held over
4 GB, past the standard worker's 2 GiB limit. With a budget the threads take turns instead.
A render estimated over the whole budget runs alone (it is within the pixel limit).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class MemoryBudget:
    """``capacity`` bytes shared by the renders of this process, granted in arrival order."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._free = capacity
        self._queue: deque[int] = deque()
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @property
    def free(self) -> int:
        """Bytes not reserved now."""
        with self._changed:
            return self._free

    @property
    def waiting(self) -> int:
        """Reservations waiting for their turn."""
        with self._changed:
            return len(self._queue)

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[int]:
        """Hold ``nbytes`` (at most the capacity) for the block; yields what is held."""
        want = max(0, min(nbytes, self.capacity))
        with self._changed:
            ticket = next(self._tickets)
            self._queue.append(ticket)
            # The head of the queue goes first: a large render is not overtaken forever.
            self._changed.wait_for(lambda: self._queue[0] == ticket and self._free >= want)
            self._queue.popleft()
            self._free -= want
            self._changed.notify_all()  # the next in line may fit too
        try:
            yield want
        finally:
            with self._changed:
                self._free += want
                self._changed.notify_all()


_shared: dict[int, MemoryBudget] = {}
_shared_lock = threading.Lock()


def shared_budget(capacity: int) -> MemoryBudget:
    """The one budget of this process for ``capacity`` (the worker's setting)."""
    with _shared_lock:
        budget = _shared.get(capacity)
        if budget is None:
            budget = _shared[capacity] = MemoryBudget(capacity)
        return budget

"""Long polling: ``GET /api/v1/jobs/{id}?wait=N`` answers as soon as the job finishes.

One LISTEN connection per API process (``pixtools_jobs``, payload: the job id) wakes the
requests waiting on that job; in embedded mode the in-process signal does. A client that
would otherwise poll every fraction of a second makes one request per job instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from pixtools.store.database import JOBS_CHANNEL, Database, Listener

log = logging.getLogger(__name__)


class JobWaiters:
    """Requests waiting for jobs to finish, woken by job id."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Listen for finished jobs (LISTEN, or the in-process signal)."""
        self._loop = asyncio.get_running_loop()
        self.db.signals.job_finished.append(self._finished_threadsafe)
        if not self.db.is_sqlite:
            try:
                self._listener = await self.db.listen(JOBS_CHANNEL, self._finished)
            except Exception:  # waiting requests fall back to their own timeout
                log.warning(
                    "LISTEN %s unavailable; ?wait= degrades to its timeout",
                    JOBS_CHANNEL,
                    exc_info=True,
                )

    async def stop(self) -> None:
        """Stop listening and cancel every wait still pending."""
        if self._finished_threadsafe in self.db.signals.job_finished:
            self.db.signals.job_finished.remove(self._finished_threadsafe)
        if self._listener is not None:
            await self._listener.close()
        for futures in self._waiting.values():
            for fut in futures:
                fut.cancel()
        self._waiting.clear()

    def _finished_threadsafe(self, job_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._finished, job_id)

    def _finished(self, job_id: str) -> None:
        for fut in self._waiting.pop(job_id, ()):
            if not fut.done():
                fut.set_result(None)

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Future[None]]:
        """A future resolved when ``job_id`` finishes. Subscribe *before* re-reading the job."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, set()).add(fut)
        try:
            yield fut
        finally:
            futures = self._waiting.get(job_id)
            if futures is not None:
                futures.discard(fut)
                if not futures:
                    del self._waiting[job_id]

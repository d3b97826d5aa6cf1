"""The actors: thin. They load, call the engine, store, and record state.

Every actor is idempotent: it checks the database before working, so a redelivered or
replayed message never redoes finished work, and object keys are deterministic so a
repeated write replaces the same object instead of adding one.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from pixtools.messaging.names import FINALIZE_ACTOR, PROCESS_ACTOR, WEBHOOK_ACTOR
from pixtools.observability.tracing import continued
from pixtools.services import Services, build_services
from pixtools.settings import Settings
from pixtools.store.cache import Cache
from pixtools.store.database import LocalSignals
from pixtools.store.jobs import Finished, Held, OutputDone
from pixtools.store.objects import archive_key, output_key
from pixtools.worker.previews import store_previews

log = logging.getLogger(__name__)


class WorkerRuntime:
    """The worker process's services, created on the Dramatiq event-loop thread on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache: Cache | None = None,
        signals: LocalSignals | None = None,
    ) -> None:
        self.settings = settings
        self._cache = cache
        self._signals = signals
        self._services: Services | None = None

    def services(self) -> Services:
        if self._services is None:
            self._services = build_services(
                self.settings, cache=self._cache, pool_size=5, signals=self._signals
            )
        return self._services


_runtime: WorkerRuntime | None = None


def runtime() -> WorkerRuntime:
    if _runtime is None:
        raise RuntimeError("declare_actors() was not called in this process")
    return _runtime


@asynccontextmanager
async def heartbeating(
    svc: Services, job_id: uuid.UUID, name: str, attempt: int
) -> AsyncIterator[None]:
    """Touch the output row while it is worked on, so the reconciler can tell a dead worker."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(svc.settings.heartbeat_seconds)
            try:
                await svc.jobs.heartbeat(job_id, name, attempt)
            except Exception:  # a missed beat is not fatal; the next one may succeed
                log.warning("heartbeat failed for %s/%s", job_id, name, exc_info=True)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def process_output(job_id: str, name: str, traceparent: str | None = None) -> None:
    """Render one output of a job and store it; the job's last output finalizes it."""
    with continued(
        traceparent, "process_output", **{"pixtools.job_id": job_id, "pixtools.output": name}
    ):
        await _process_output(job_id, name)


async def _process_output(job_id: str, name: str) -> None:
    svc = runtime().services()
    jid = uuid.UUID(job_id)
    out = await svc.jobs.claim_output(jid, name, stale_after=svc.settings.stale_after_seconds)
    if out is None:
        log.info("output %s/%s is finished or canceled; skipping", job_id, name)
        return
    if isinstance(out, Held):
        await _come_back_later(svc, job_id, name, out)
        return
    attempt = out.attempts
    started = time.perf_counter()
    async with heartbeating(svc, jid, name, attempt):
        finished = await _render_and_store(
            svc, out.source_key, jid, name, out.steps, attempt, source_url=out.source_url
        )
    if not finished:
        log.warning("output %s/%s attempt %d was superseded; result dropped", job_id, name, attempt)
        return
    log.info("output %s/%s ended in %.0f ms", job_id, name, (time.perf_counter() - started) * 1000)
    if finished.last and not finished.closed:
        await finalize_job(job_id)  # an archive to build first


async def _come_back_later(svc: Services, job_id: str, name: str, held: Held) -> None:
    """The output runs under another attempt whose heartbeat is still fresh. That worker may
    be alive (a duplicate delivery) or dead (killed; RabbitMQ redelivered its message at once,
    before its heartbeat could go stale). Dropping this message would leave a dead worker's
    output to the periodic reconciler; instead it comes back just after the heartbeat would
    go stale: then it takes the output over, or finds it finished and stops."""
    message = CurrentMessage.get_current_message()
    if message is None:  # not under a worker (a direct call): nothing to re-send
        return
    delay = held.stale_in + min(1.0, svc.settings.heartbeat_seconds)
    log.info(
        "output %s/%s is held by another attempt; checking again in %.1f s", job_id, name, delay
    )
    # The same message again, delayed (RabbitMQ: through the queue's delay queue, durable).
    again = message.copy()
    await asyncio.to_thread(dramatiq.get_broker().enqueue, again, delay=int(delay * 1000))


async def _render_and_store(
    svc: Services,
    source_key: str,
    jid: uuid.UUID,
    name: str,
    steps_data: list[Any],
    attempt: int,
    *,
    source_url: str | None = None,
) -> Finished:
    from msgspec import ValidationError

    from pixtools.imaging import ImageError, render_output
    from pixtools.jobspec.job import steps_from_builtins
    from pixtools.worker.fetch import load_source

    try:
        source = await load_source(svc, jid, source_key, source_url)
        rendered = await asyncio.to_thread(
            render_output,
            source,
            steps_from_builtins(steps_data),
            max_pixels=svc.settings.max_pixels,
        )
    except ImageError as exc:  # the engine's permanent class (see docs/imaging.md)
        log.info("output %s/%s failed permanently: %s", jid, name, exc)
        return await svc.jobs.fail_output(jid, name, attempt, str(exc))
    except ValidationError as exc:  # steps stored by an older version, invalid now: permanent
        return await svc.jobs.fail_output(jid, name, attempt, f"invalid steps: {exc}")
    except ImportError as exc:  # an ML op on a worker without the ml extra: no retry helps
        return await svc.jobs.fail_output(
            jid, name, attempt, f"this worker cannot run ML ops ({exc}); install the ml extra"
        )
    except (MemoryError, RecursionError) as exc:
        return await svc.jobs.fail_output(
            jid, name, attempt, f"{type(exc).__name__}: image too complex"
        )
    except Exception as exc:
        await _transient_failure(svc, jid, name, attempt, exc)
        return Finished(recorded=True)
    key = None
    if rendered.data is not None:
        assert rendered.extension and rendered.content_type
        key = output_key(str(jid), name, rendered.extension)
        await svc.objects.put(key, rendered.data, rendered.content_type)
    await store_previews(svc, jid, name, rendered.data, source)
    done = OutputDone(
        object_key=key,
        format=rendered.format,
        content_type=rendered.content_type,
        width=rendered.width,
        height=rendered.height,
        bytes=len(rendered.data) if rendered.data is not None else None,
        result=rendered.result,
    )
    return await svc.jobs.succeed_output(jid, name, attempt, done)


async def _transient_failure(
    svc: Services, jid: uuid.UUID, name: str, attempt: int, exc: BaseException
) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if attempt >= svc.settings.output_max_attempts:
        await svc.jobs.fail_output(jid, name, attempt, f"failed after {attempt} attempts: {error}")
        log.warning("output %s/%s failed after %d attempts", jid, name, attempt, exc_info=exc)
        return
    delay = random.uniform(0, min(60.0, 2.0**attempt))  # full jitter
    await svc.jobs.retry_output_later(jid, name, attempt, error, delay)
    log.warning(
        "output %s/%s attempt %d failed; retry in %.1f s", jid, name, attempt, delay, exc_info=exc
    )


async def finalize_job(job_id: str, traceparent: str | None = None) -> None:
    """Bundle the succeeded outputs into a ZIP when asked, and set the terminal status."""
    with continued(traceparent, "finalize_job", **{"pixtools.job_id": job_id}):
        await _finalize_job(job_id)


async def _finalize_job(job_id: str) -> None:
    svc = runtime().services()
    jid = uuid.UUID(job_id)
    record = await svc.jobs.get(jid)
    if record is None or record.job.finished_at is not None:
        return
    archive_status = archive_obj = None
    if record.job.archive_status is not None:
        files = [
            (o.name, o.object_key)
            for o in record.outputs
            if o.status == "succeeded" and o.object_key is not None
        ]
        if files:
            try:
                archive_obj = archive_key(job_id)
                blobs = [
                    (f"{n}.{k.rsplit('.', 1)[-1]}", await svc.objects.get(k)) for n, k in files
                ]
                data = await asyncio.to_thread(_zip, blobs)
                await svc.objects.put(archive_obj, data, "application/zip")
                archive_status = "succeeded"
            except Exception:
                log.exception("archive of %s failed", job_id)
                archive_status, archive_obj = "failed", None
        else:
            archive_status = "failed"
    status = await svc.jobs.complete_job(
        jid, archive_status=archive_status, archive_key=archive_obj
    )
    if status:
        log.info("job %s %s", job_id, status)


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    # Images are compressed already: store them; deflate only what shrinks (e.g. TIFF, BMP).
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files:
            method = (
                zipfile.ZIP_STORED
                if name.endswith((".jpeg", ".jpg", ".webp", ".avif", ".png", ".gif"))
                else zipfile.ZIP_DEFLATED
            )
            zf.writestr(
                zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=method
            )
    return buf.getvalue()


async def deliver_webhook(job_id: str, delivery_id: str, traceparent: str | None = None) -> None:
    """Deliver the terminal-state webhook (signed, retried, with a circuit breaker)."""
    from pixtools.webhooks.delivery import deliver

    svc = runtime().services()
    with continued(traceparent, "deliver_webhook", **{"pixtools.job_id": job_id}):
        await deliver(svc, uuid.UUID(job_id), uuid.UUID(delivery_id))


def declare_actors(
    broker: dramatiq.Broker,
    settings: Settings,
    *,
    cache: Cache | None = None,
    signals: LocalSignals | None = None,
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind the actors to ``broker`` and set up this process's worker runtime."""
    from pixtools.maintenance.periodic import PeriodicReconciler

    global _runtime
    _runtime = WorkerRuntime(settings, cache=cache, signals=signals)
    # The workers run the reconciliation pass themselves (one at a time across processes).
    broker.add_middleware(PeriodicReconciler(settings, signals=signals))
    time_limit = 15 * 60 * 1000
    specs: list[tuple[Callable[..., Any], str, str]] = [
        (process_output, PROCESS_ACTOR["standard"], "standard"),
        (process_output, PROCESS_ACTOR["ml"], "ml"),
        (finalize_job, FINALIZE_ACTOR, "standard"),
        (deliver_webhook, WEBHOOK_ACTOR, "standard"),
    ]
    return {
        name: dramatiq.actor(
            actor_name=name, queue_name=queue, broker=broker, time_limit=time_limit
        )(fn)
        for fn, name, queue in specs
    }

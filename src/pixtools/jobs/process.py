"""Processing one output: claim it, heartbeat it, render, store and record the result.

Idempotent: the claim checks the database first, so a redelivered or replayed message never
redoes finished work; the attempt number fences a presumed-dead worker that comes back; and
object keys are deterministic, so a repeated write replaces the same object.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from pixtools.backoff import backoff
from pixtools.jobs.finalize import finalize_job
from pixtools.jobs.previews import Images, SourcePreview, store_previews
from pixtools.observability.tracing import continued
from pixtools.services import Services
from pixtools.store.jobs import Claim, Finished, Held, OutputDone
from pixtools.store.objects import output_key
from pixtools.store.previews import source_preview_key

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 2.0  # an output's first retry waits up to this, doubling per attempt
RETRY_CAP_SECONDS = 60.0

ComeBackLater = Callable[[float], Awaitable[None]]
"""Deliver this same work again after the given seconds (the messaging side knows how)."""


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


async def process_output(
    svc: Services, job_id: str, name: str, *, come_back_later: ComeBackLater | None = None
) -> None:
    """Render one output of a job and store it; the job's last output finalizes it.

    ``come_back_later`` re-delivers this work after a delay; without it (a direct call) an
    output held by another attempt is left to that attempt and to the reconciler."""
    jid = uuid.UUID(job_id)
    out = await svc.jobs.claim_output(jid, name, stale_after=svc.settings.stale_after_seconds)
    if out is None:
        log.info("output %s/%s is finished or canceled; skipping", job_id, name)
        return
    if isinstance(out, Held):
        if come_back_later is not None:
            await _come_back_later(svc, job_id, name, out, come_back_later)
        return
    attempt = out.attempts
    started = time.perf_counter()
    async with heartbeating(svc, jid, name, attempt):
        finished = await _render_and_store(svc, jid, name, out)
    if not finished:
        log.warning("output %s/%s attempt %d was superseded; result dropped", job_id, name, attempt)
        return
    log.info("output %s/%s ended in %.0f ms", job_id, name, (time.perf_counter() - started) * 1000)
    if finished.last and not finished.closed:  # an archive to build first
        with continued(None, "finalize_job", **{"pixtools.job_id": job_id}):
            await finalize_job(svc, job_id)


async def _come_back_later(
    svc: Services, job_id: str, name: str, held: Held, come_back_later: ComeBackLater
) -> None:
    """The output runs under another attempt whose heartbeat is still fresh. That worker may
    be alive (a duplicate delivery) or dead (killed; RabbitMQ redelivered its message at once,
    before its heartbeat could go stale). Dropping this message would leave a dead worker's
    output to the periodic reconciler; instead it comes back just after the heartbeat would
    go stale: then it takes the output over, or finds it finished and stops."""
    delay = held.stale_in + min(1.0, svc.settings.heartbeat_seconds)
    log.info(
        "output %s/%s is held by another attempt; checking again in %.1f s", job_id, name, delay
    )
    await come_back_later(delay)


async def _render_and_store(svc: Services, jid: uuid.UUID, name: str, out: Claim) -> Finished:
    from msgspec import ValidationError

    from pixtools.imaging import ImageError, render_output
    from pixtools.imaging.budget import shared_budget
    from pixtools.imaging.pipeline import Rendered, source_render_bytes
    from pixtools.jobs.fetch import load_source
    from pixtools.jobspec.job import steps_from_builtins
    from pixtools.jobspec.ops import Step
    from pixtools.observability.metrics import OP_SECONDS

    attempt = out.attempts
    source_preview = SourcePreview(await svc.objects.exists(source_preview_key(str(jid))))
    max_pixels = svc.settings.max_pixels
    # The pixel limit bounds one render, the budget how many run at once in this process.
    budget = shared_budget(svc.settings.render_memory_mb * 2**20)

    def render(source: bytes, steps: list[Step]) -> Rendered:
        with budget.reserve(source_render_bytes(source, steps, max_pixels)):
            return render_output(
                source,
                steps,
                max_pixels=max_pixels,
                on_step=lambda op, seconds: OP_SECONDS.labels(op).observe(seconds),
                on_decoded=source_preview.from_decoded,
            )

    try:
        source = await load_source(svc, jid, out.source_key, out.source_url)
        rendered = await asyncio.to_thread(render, source, steps_from_builtins(out.steps))
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
        # A redo (attempt > 1) keeps an object an earlier attempt completed before it died:
        # the key is deterministic and the render the same, so every object is written once.
        await svc.objects.put(key, rendered.data, rendered.content_type, if_absent=attempt > 1)
    images = Images(rendered.data, source, source_preview)
    await store_previews(svc, jid, name, images, redo=attempt > 1)
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
    delay = backoff(attempt, RETRY_BASE_SECONDS, RETRY_CAP_SECONDS)
    await svc.jobs.retry_output_later(jid, name, attempt, error, delay)
    log.warning(
        "output %s/%s attempt %d failed; retry in %.1f s", jid, name, attempt, delay, exc_info=exc
    )

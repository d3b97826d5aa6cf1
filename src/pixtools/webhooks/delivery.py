"""Deliver a job's terminal-state webhook: signed, retried with backoff and full jitter,
every attempt persisted, guarded against SSRF and behind a shared circuit breaker."""

from __future__ import annotations

import logging
import random
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec

from pixtools.backoff import backoff
from pixtools.jobspec.status import TERMINAL_JOB, webhook_event
from pixtools.observability.metrics import WEBHOOK_BREAKER, WEBHOOK_DELIVERIES, WEBHOOK_SECONDS
from pixtools.services import Services
from pixtools.settings import Settings
from pixtools.store.webhooks import AttemptResult, Outcome
from pixtools.views import job_out
from pixtools.webhooks.breaker import CircuitBreaker, destination
from pixtools.webhooks.guard import UnsafeWebhookUrl, resolve_public
from pixtools.webhooks.signing import sign

log = logging.getLogger(__name__)


def pinned_url(url: str, address: str) -> tuple[str, str]:
    """``url`` with its host replaced by the checked ``address``; and the Host header value."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header


async def deliver(svc: Services, job_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    """Make one delivery attempt of a job's terminal-state webhook and record its outcome."""
    settings = svc.settings
    repo = svc.webhooks
    record = await svc.jobs.get(job_id)
    if record is None or not record.job.webhook_url:
        return
    job = record.job
    if job.status not in TERMINAL_JOB or job.webhook_status in ("delivered", "failed"):
        return
    url = job.webhook_url
    assert url is not None
    breaker = CircuitBreaker(
        svc.cache,
        threshold=settings.webhook_cb_fail_threshold,
        reset_timeout=settings.webhook_cb_reset_timeout,
    )
    dest = destination(url)
    allowed, wait = await breaker.allow(dest)
    if not allowed:
        await repo.record(
            job_id,
            delivery_id,
            AttemptResult(
                outcome="circuit_open",
                status_code=None,
                error="circuit open for this destination",
                duration_ms=0.0,
                retry_in=wait + random.uniform(0, 1),
            ),
        )
        WEBHOOK_DELIVERIES.labels("circuit_open").inc()
        return

    body = msgspec.json.encode(job_out(record))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PixTools-Webhook/1",
        "PixTools-Event": webhook_event(job.status),
        "PixTools-Delivery": str(delivery_id),
        # The API accepts webhook URLs only when a secret is configured.
        "PixTools-Signature": sign(settings.webhook_secret, body),
    }

    started = time.perf_counter()
    status_code, error = await _post(url, body, headers, settings)
    elapsed = time.perf_counter() - started
    duration_ms = round(elapsed * 1000, 2)
    WEBHOOK_SECONDS.observe(elapsed)

    if error is None:
        if await breaker.success(dest):
            WEBHOOK_BREAKER.labels("closed").inc()
        outcome: Outcome = "delivered"
        delay = 0.0
    else:
        if await breaker.failure(dest):
            WEBHOOK_BREAKER.labels("open").inc()
        outcome, delay = _after_failure(job_id, job.webhook_attempts + 1, error, settings)
    await repo.record(
        job_id,
        delivery_id,
        AttemptResult(
            outcome=outcome,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            retry_in=delay,
        ),
    )
    WEBHOOK_DELIVERIES.labels(outcome).inc()


async def _post(
    url: str, body: bytes, headers: dict[str, str], settings: Settings
) -> tuple[int | None, str | None]:
    """POST ``body`` to the checked address of ``url``: the status code and the error, if any."""
    status_code: int | None = None
    error: str | None = None
    try:
        addresses = await resolve_public(url, allow_private=settings.webhook_allow_private)
        target, host_header = pinned_url(url, addresses[0])
        headers["Host"] = host_header
        extensions = {"sni_hostname": urlsplit(url).hostname} if url.startswith("https") else {}
        async with httpx.AsyncClient(
            timeout=settings.webhook_timeout, follow_redirects=False
        ) as client:
            resp = await client.post(target, content=body, headers=headers, extensions=extensions)
        status_code = resp.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except UnsafeWebhookUrl as exc:
        error = f"refused: {exc}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    return status_code, error


def _after_failure(
    job_id: uuid.UUID, attempts_so_far: int, error: str, settings: Settings
) -> tuple[Outcome, float]:
    """A failed attempt's outcome (``failed`` for good, or ``retry``) and the retry delay."""
    # A refused (non-public) destination cannot get better by waiting.
    if error.startswith("refused:") or attempts_so_far >= settings.webhook_max_attempts:
        log.warning("webhook for job %s failed for good: %s", job_id, error)
        return "failed", 0.0
    delay = backoff(attempts_so_far, settings.webhook_backoff_base, settings.webhook_backoff_cap)
    log.info("webhook for job %s failed (%s); retry in %.1f s", job_id, error, delay)
    return "retry", delay

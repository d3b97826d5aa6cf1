"""Liveness, readiness, the deep health check and the metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import MediaType, Request, Response, get

from pixtools.api.auth import ServicesDep

CHECK_TIMEOUT = 3.0

log = logging.getLogger(__name__)


async def _timed(check: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as exc:
        return {
            "ok": False,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__,
        }
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _broker_check(services: ServicesDep) -> Callable[[], Awaitable[None]]:
    url = services.settings.rabbitmq_url

    async def check() -> None:
        if not url:
            return  # the in-process broker is up as long as this process is
        import pika

        def connect() -> None:
            params = pika.URLParameters(url)
            params.socket_timeout = CHECK_TIMEOUT
            params.blocked_connection_timeout = CHECK_TIMEOUT
            params.connection_attempts = 1
            params.retry_delay = 0
            conn = pika.BlockingConnection(params)
            conn.close()

        await asyncio.to_thread(connect)

    return check


async def _checks(services: ServicesDep, *, deep: bool) -> dict[str, dict[str, Any]]:
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": services.db.ping,
        "broker": _broker_check(services),
        "cache": services.cache.ping,
    }
    if deep:
        checks["object_store"] = services.objects.ping
    results = await asyncio.gather(*(_timed(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))


@get("/livez", include_in_schema=True, tags=["health"], summary="The process is alive")
async def livez() -> dict[str, str]:
    """Always ok while the process serves requests."""
    return {"status": "ok"}


@get("/readyz", tags=["health"], summary="Database, broker and cache answer")
async def readyz(services: ServicesDep) -> Response[dict[str, Any]]:
    """503 naming what is down when the database, broker or cache does not answer."""
    results = await _checks(services, deep=False)
    down = [name for name, r in results.items() if not r["ok"]]
    body: dict[str, Any] = {"status": "ready" if not down else "unavailable", "checks": results}
    if down:
        body["down"] = down
        body["detail"] = f"not ready: {', '.join(down)} down"
    return Response(body, status_code=503 if down else 200)


@get("/health", tags=["health"], summary="Deep check with per-dependency latency")
async def health(
    request: Request[Any, Any, Any], services: ServicesDep
) -> Response[dict[str, Any]]:
    """Every dependency with its latency, the build, and the outbox backlog."""
    from pixtools.imaging import build_info

    results = await _checks(services, deep=True)
    down = [name for name, r in results.items() if not r["ok"]]
    body: dict[str, Any] = {
        "status": "ok" if not down else "degraded",
        "mode": "embedded" if services.settings.embedded else "services",
        "object_store": services.objects.kind,
        "cache": services.cache.kind,
        "checks": results,
        "pillow": build_info(),
        "uptime_s": round(time.time() - request.app.state.started, 1),
    }
    if not results["database"]["ok"]:
        return Response(body, status_code=503)
    pending = await services.outbox.pending_count()
    body["outbox_pending"] = pending
    request.app.state.metrics.outbox_pending.set(pending)
    return Response(body, status_code=503 if down else 200)


@get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics",
    media_type="text/plain; version=0.0.4",
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The API's metrics in the Prometheus text format, the outbox gauges refreshed first."""
    m = request.app.state.metrics
    relay = getattr(request.app.state, "relay", None)
    if relay is not None:
        m.outbox_published.set(relay.published)
    services = getattr(request.app.state, "services", None)
    if services is not None:
        try:
            await asyncio.wait_for(m.refresh_outbox(services.db), CHECK_TIMEOUT)
        except Exception:  # a scrape must answer even when the database does not
            log.warning("could not read the outbox backlog", exc_info=True)
    return Response(m.render(), media_type=MediaType.TEXT)

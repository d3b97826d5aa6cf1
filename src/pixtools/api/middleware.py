"""ASGI middleware: security headers, request metrics and the shared rate limiter."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)
from opentelemetry import propagate, trace

from pixtools.api.auth import presented_key
from pixtools.observability.tracing import tracer

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# The docs pages load Swagger UI / ReDoc from their CDN; everything else is same-origin only.
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
IDENTITY_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-forwarded-for"})


def picked_headers(scope: Scope, names: frozenset[bytes]) -> dict[str, str]:
    """Only the named request headers, decoded (ASGI names are lower-case already): every
    request passes here, and most of its headers are of no interest to us."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in names}


class SecurityHeadersMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path: str = scope["path"]
        docs = path.startswith("/schema")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if not docs:
                    headers["content-security-policy"] = STRICT_CSP
            await send(message)

        await next_app(scope, receive, send_with_headers)


class RequestMetricsMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    """Request count and latency by route template, and a server span continuing the
    caller's trace (W3C ``traceparent``)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status = 500
        method = str(scope.get("method", ""))
        headers = picked_headers(scope, TRACE_HEADERS)

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer().start_as_current_span(
            f"{method} {scope['path']}",
            context=propagate.extract(headers),
            kind=trace.SpanKind.SERVER,
        ) as span:
            try:
                await next_app(scope, receive, capture)
            finally:
                metrics = scope["litestar_app"].state.metrics
                # Label by route template only: raw paths (job ids) would explode cardinality.
                route = str(scope.get("path_template") or "unmatched")
                metrics.requests.labels(method, route, str(status)).inc()
                metrics.latency.labels(method, route).observe(time.perf_counter() - started)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)


def client_identity(scope: Scope) -> str:
    """Rate-limit identity: the presented API key (hashed), else the client address.

    Behind the ALB the client address is the last X-Forwarded-For entry (the one the
    load balancer appended); entries before it are client-supplied and not trusted.
    """
    headers = picked_headers(scope, IDENTITY_HEADERS)
    key = presented_key(headers)
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    forwarded = headers.get("x-forwarded-for")
    if forwarded:
        return "ip:" + forwarded.split(",")[-1].strip()
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class RateLimitMiddleware(ASGIMiddleware):
    """Fixed one-minute windows per identity, counted in the shared cache (Redis)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        app = scope["litestar_app"]
        limit: int = app.state.settings.rate_limit_per_minute
        if limit <= 0 or not scope["path"].startswith("/api/"):
            await next_app(scope, receive, send)
            return
        services: Any = getattr(app.state, "services", None)
        try:
            hits, reset = await services.cache.incr_window("rl:" + client_identity(scope), 60)
        except Exception:  # the cache is best-effort: fail open, loudly
            log.warning("rate limiter cache unavailable; request allowed", exc_info=True)
            await next_app(scope, receive, send)
            return
        if hits > limit:
            retry_after = str(max(1, int(reset) + 1))
            body = msgspec.json.encode(
                {
                    "status_code": 429,
                    "detail": "rate limit exceeded",
                    "extra": {"retry_after": int(retry_after)},
                }
            )
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", retry_after.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
            end: HTTPResponseBodyEvent = {
                "type": "http.response.body",
                "body": body,
                "more_body": False,
            }
            await send(start)
            await send(end)
            return
        await next_app(scope, receive, send)

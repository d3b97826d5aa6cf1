"""ASGI middleware: security headers, request metrics and the shared rate limiter."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import time
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from opentelemetry import propagate, trace

from pixtools.api.auth import presented_key
from pixtools.api.errors import error_json
from pixtools.observability.tracing import tracer
from pixtools.settings import IPNetwork

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# Same-origin only. The docs pages (/docs, /redoc) load everything from this origin too; they
# only add inline styles (ReDoc's styled-components inject <style> elements) and blob: workers
# (ReDoc's search). Scripts stay 'self' everywhere: no inline script, no CDN.
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
DOCS_PAGES = frozenset({"/docs", "/redoc"})
TEXT_ERROR_KEY = "pixtools.text_error"


TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
IDENTITY_HEADERS = frozenset({b"authorization", b"x-api-key"})
FORWARDED_HEADER = frozenset({b"x-forwarded-for"})


def picked_headers(scope: Scope, names: frozenset[bytes]) -> dict[str, str]:
    """Only the named request headers, decoded (ASGI names are lower-case already): every
    request passes here, and most of its headers are of no interest to us."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in names}


async def add_security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: every response gets the security headers.

    A hook rather than a middleware: Litestar runs middleware only for matched routes, so
    404s, 405s, CORS preflights and errors raised before routing never passed through it.
    """
    if message["type"] == "http.response.body":
        status = scope.get(TEXT_ERROR_KEY)
        if isinstance(status, int) and not message.get("more_body", False):
            detail = bytes(message["body"]).decode("utf-8", "replace").strip()
            message["body"] = error_json(status, detail or "error")
        return
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    if message["status"] >= 400 and headers.get("content-type", "").startswith("text/plain"):
        # Errors Litestar writes as text itself (a refused CORS preflight) become the one
        # JSON error body; the length is unknown until the body passes, so it is dropped
        # (uvicorn then sends the answer chunked).
        scope[TEXT_ERROR_KEY] = message["status"]  # type: ignore[literal-required]
        headers["content-type"] = "application/json"
        del headers["content-length"]
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    headers["content-security-policy"] = DOCS_CSP if scope["path"] in DOCS_PAGES else STRICT_CSP
    if scope.get("method") == "OPTIONS" and "allow" in headers:
        # Litestar builds a path's OPTIONS answer when the path's first handler is added, so
        # its Allow missed methods added later (POST beside GET); the route knows them all.
        allowed = scope["litestar_app"].state.allowed_methods.get(scope.get("path_template"))
        if allowed:
            headers["allow"] = allowed


def head_as_get(app: ASGIApp) -> ASGIApp:
    """HEAD is answered as GET without its body (RFC 9110: a server that has GET has HEAD).

    Litestar routes HEAD only to handlers declared for it (405 on every API route, /livez
    included), so the method becomes GET before routing, on a copy of the scope: the
    server's own scope still says HEAD. The body is dropped here; the headers (its
    ``content-length`` too) are the GET's."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await app({**scope, "method": "GET"}, receive, headless)

    return handle


class RequestMetricsMiddleware(ASGIMiddleware):
    """Request count and latency by route template, and a server span continuing the
    caller's trace (W3C ``traceparent``)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Time the request and count it under its route template, inside a server span."""
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


def _trusted(host: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # not an address at all: never a trusted proxy
        return False
    return any(ip in net for net in networks)


def client_address(scope: Scope, trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy.

    Each proxy appends the address it saw to X-Forwarded-For, so the list is read from the
    right and the first address that is not a trusted proxy is the client; everything left
    of it was written by the client and proves nothing. From any other peer the header is
    ignored: anyone can send it.
    """
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = picked_headers(scope, FORWARDED_HEADER).get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def client_identity(scope: Scope, trusted: tuple[IPNetwork, ...] = ()) -> str:
    """Rate-limit identity: the presented API key (hashed), else the client address."""
    key = presented_key(picked_headers(scope, IDENTITY_HEADERS))
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return "ip:" + client_address(scope, trusted)


class RateLimitMiddleware(ASGIMiddleware):
    """Fixed one-minute windows per identity, counted in the shared cache (Redis)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count the caller's request in this minute's window; over the limit, 429."""
        app = scope["litestar_app"]
        limit: int = app.state.settings.rate_limit_per_minute
        if limit <= 0 or not scope["path"].startswith("/api/"):
            await next_app(scope, receive, send)
            return
        services: Any = getattr(app.state, "services", None)
        try:
            identity = client_identity(scope, app.state.trusted_networks)
            hits, reset = await services.cache.incr_window("rl:" + identity, 60)
        except Exception:  # the cache is best-effort: fail open, loudly
            log.warning("rate limiter cache unavailable; request allowed", exc_info=True)
            await next_app(scope, receive, send)
            return
        if hits > limit:
            retry_after = max(1, int(reset) + 1)
            await send_error(send, 429, "rate limit exceeded", retry_after=retry_after)
            return
        await next_app(scope, receive, send)


async def send_error(send: Send, status: int, detail: str, *, retry_after: int) -> None:
    """Answer with the documented error body straight from a middleware."""
    body = error_json(status, detail, {"retry_after": retry_after})
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", str(retry_after).encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


class RequestTimeout(HTTPException):
    """The body did not arrive in time (slow or stalled client)."""

    status_code = 408


class ClientDisconnected(HTTPException):
    """The client went away before its request body was complete. 499 is nginx's name for
    it: no response reaches anyone, but metrics and logs say what happened, not 500."""

    status_code = 499


#: Submissions are the only requests that hold megabytes while they are read and checked.
UPLOAD_PATHS = frozenset({"/api/v1/jobs", "/api/v1/jobs/"})
UPLOAD_SLOT_KEY = "pixtools.release_upload_slot"


def release_upload_slot(scope: Scope) -> None:
    """Give back this submission's upload slot now that its body is read and stored."""
    release = scope.get(UPLOAD_SLOT_KEY)
    if callable(release):
        release()


UPLOAD_RETRY_AFTER = 2


class RequestGuardMiddleware(ASGIMiddleware):
    """Time-boxes request bodies and caps concurrent uploads.

    A body must arrive within ``body_timeout`` seconds in all, with no pause longer than
    ``body_idle_timeout`` (408 otherwise), so a client trickling bytes cannot hold a
    connection and its buffer. At most ``upload_concurrency`` job submissions are read at
    once per process (memory is about that many times ``max_upload_bytes``); another waits up
    to ``upload_wait_seconds`` for a slot, then gets 503 with Retry-After. A client that
    disconnects mid-body is a 499, logged once at INFO. (The headers' deadline is the
    server's: see ``pixtools.api.serving``.)
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Enforce the body deadline and the upload slots around the request."""
        state = scope["litestar_app"].state
        settings = state.settings
        loop = asyncio.get_running_loop()
        method = str(scope.get("method", ""))
        deadline = loop.time() + settings.body_timeout
        idle: float = settings.body_idle_timeout
        body_done = False

        async def guarded_receive() -> ReceiveMessage:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(min(deadline - loop.time(), idle)):
                    message = await receive()
            except TimeoutError:
                body_done = True
                log.info("request body timed out: %s %s", method, scope["path"])
                raise RequestTimeout(
                    detail=f"request body not received in time (at most {idle:g} s without "
                    f"data, {settings.body_timeout:g} s in all)",
                    # The rest of the body is never read: the connection cannot be reused.
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.disconnect":
                body_done = True
                log.info("client disconnected mid-request: %s %s", method, scope["path"])
                raise ClientDisconnected(detail="client disconnected before the body was sent")
            if not message.get("more_body", False):
                body_done = True
            return message

        if method != "POST" or scope["path"] not in UPLOAD_PATHS:
            await next_app(scope, guarded_receive, send)
            return
        slots: asyncio.Semaphore = state.upload_slots
        try:
            # A burst waits a little for a slot (its body stays in the kernel's buffers,
            # unread); a sustained overload is refused rather than queued without bound.
            await asyncio.wait_for(slots.acquire(), settings.upload_wait_seconds)
        except TimeoutError:
            await send_error(
                send,
                503,
                f"too many uploads in progress (limit {settings.upload_concurrency}); "
                "retry shortly",
                retry_after=UPLOAD_RETRY_AFTER,
            )
            return
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                slots.release()

        # The handler gives the slot back once the submission is stored (``?wait=N`` then
        # holds no slot: eight clients waiting for their jobs locked every upload out).
        scope[UPLOAD_SLOT_KEY] = release  # type: ignore[literal-required]
        try:
            await next_app(scope, guarded_receive, send)
        finally:
            release()

"""How uvicorn serves the app: the headers' deadline and which proxies are believed.

uvicorn has no deadline for a request's headers: its keep-alive timer is cancelled by the
first byte, so a client sending one header byte a second holds a connection for ever. The
protocol classes here close a connection whose next request's headers are not complete
``header_timeout`` seconds after it opened (or after its previous response). The body's
deadline is the app's (``RequestGuardMiddleware``), where a 408 can still be answered.

Nor does uvicorn's httptools protocol bound a request's line and headers: a 10 MB header was
read and answered. Past ``MAX_HEADER_BYTES`` (64 KiB, what an AWS ALB allows) the answer is
431 with the JSON error body, and the connection closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pixtools.api.middleware import SECURITY_HEADERS, STRICT_CSP
from pixtools.settings import Settings

log = logging.getLogger(__name__)

#: The most bytes a request's line and headers may take (431 beyond).
MAX_HEADER_BYTES = 64 * 1024


class _HeaderDeadline:
    """Mixin over a uvicorn HTTP protocol, which creates ``self.cycle`` when a request's
    headers are complete: "no new cycle since the timer was armed" means the headers are
    still incomplete. (uvicorn[standard] brings httptools, so that is the protocol used.)"""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _armed_cycle: object = None
    _header_bytes: int = 0

    # The attributes below belong to the uvicorn protocol this is mixed into.
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def _arm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._armed_cycle = self.cycle
        self._header_bytes = 0
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _headers_incomplete(self) -> bool:
        return self.cycle is self._armed_cycle and not self.transport.is_closing()

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is self._armed_cycle and not self.transport.is_closing():
            log.info(
                "closing a connection whose request headers took over %gs", self.header_timeout
            )
            self.transport.close()

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, as the API answers every error:
        the JSON error body and the security headers (uvicorn's own is plain text)."""
        self._send_error(400, "Bad Request", msg)

    def _send_error(self, status: int, reason: str, msg: str) -> None:
        """An error answer written before the app is reached; the connection closes."""
        body = msgspec.json.encode({"status_code": status, "detail": msg, "extra": None})
        headers = {
            **SECURITY_HEADERS,
            "content-security-policy": STRICT_CSP,
            "content-type": "application/json",
            "content-length": str(len(body)),
            "connection": "close",
        }
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        self.transport.write(head.encode("latin-1") + b"\r\n" + body)
        self.transport.close()


class HeaderDeadlineHttpTools(_HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol (the C parser) with the headers' deadline."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the headers' deadline on a new connection."""
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a request whose line and headers outgrow the limit."""
        super().data_received(data)
        if self._headers_incomplete():
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._disarm_header_deadline()
                self._send_error(
                    431,
                    "Request Header Fields Too Large",
                    f"request line and headers over {MAX_HEADER_BYTES} bytes",
                )

    def on_response_complete(self) -> None:
        """Start the deadline again for the next request on a kept-alive connection."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel the deadline of a closed connection."""
        self._disarm_header_deadline()
        super().connection_lost(exc)


def configure_protocols(settings: Settings) -> None:
    """Set the headers' deadline in this process (each uvicorn worker calls it too)."""
    _HeaderDeadline.header_timeout = settings.header_timeout


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``pixtools api``/``dev`` give ``uvicorn.run``."""
    configure_protocols(settings)
    return {
        "http": HeaderDeadlineHttpTools,
        # uvicorn rewrites the client address from X-Forwarded-For only for these peers (its
        # default trusts 127.0.0.1, which would let any local caller pick its address).
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,
        "log_config": None,
        "timeout_graceful_shutdown": 20,
    }

"""The SSRF guard: webhook URLs must resolve to public addresses only.

Checked at submit time and again at delivery time, where the connection is made to the
address that was checked (no second DNS lookup an attacker could rebind).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeWebhookUrl(ValueError):
    """The URL points at an address we refuse to call."""


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Is ``ip`` (or the IPv4 address it maps) a global unicast address?"""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def resolve_public(url: str, *, allow_private: bool = False) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them public (or allowed)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # an unclosed "[", a port out of range or not a number
        raise UnsafeWebhookUrl(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeWebhookUrl("must be an absolute http(s) URL")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # ValueError: e.g. a NUL in the host
        raise UnsafeWebhookUrl(f"host {host!r} does not resolve") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise UnsafeWebhookUrl(f"host {host!r} does not resolve")
    if not allow_private:
        for addr in addresses:
            if not is_public(ipaddress.ip_address(addr.split("%", 1)[0])):
                raise UnsafeWebhookUrl(
                    f"host {host!r} resolves to {addr}, a non-public address (refused; "
                    "PIXTOOLS_WEBHOOK_ALLOW_PRIVATE=true allows private destinations)"
                )
    return addresses

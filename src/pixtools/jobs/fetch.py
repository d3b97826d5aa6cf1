"""URL sources: the worker fetches ``{"source": {"url": ...}}`` into the job's ``raw/`` key.

Through the same SSRF guard as webhooks: the host is resolved once, every address must be
public (unless ``PIXTOOLS_URL_SOURCE_ALLOW_PRIVATE``), the connection goes to the checked
address (no second lookup to rebind), redirects are followed by hand, each hop checked the
same way (allowlist and addresses), and the whole fetch is bounded in time and in bytes
(``PIXTOOLS_MAX_UPLOAD_BYTES``, as an upload); the pixel limit is the decoder's, as for an
upload. A refusal, a 4xx, a body too large or not an image fails the output for good, with
the reason; a network error or a 5xx is retried like any transient failure.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from urllib.parse import urljoin, urlsplit

import httpx

from pixtools.imaging import ImageError, probe
from pixtools.services import Services
from pixtools.settings import Settings
from pixtools.store.objects import ObjectNotFound
from pixtools.webhooks.delivery import pinned_url
from pixtools.webhooks.guard import UnsafeWebhookUrl, resolve_public

log = logging.getLogger(__name__)
MAX_REDIRECTS = 3
#: Bytes of shared sources a worker process keeps in memory (a few popular photos).
SHARED_SOURCE_CACHE_BYTES = 64 * 1024 * 1024


class SourceFetchRefused(ImageError):
    """The URL source cannot be fetched, and trying again will not change that."""


class SourceFetchError(Exception):
    """A fetch that failed in a way that may pass (network, 5xx): retried."""


async def _fetch_once(
    client: httpx.AsyncClient, url: str, settings: Settings
) -> tuple[bytes | None, str | None]:
    """(body, None) or (None, the redirect's absolute target)."""
    host = urlsplit(url).hostname or ""
    if urlsplit(url).scheme not in ("http", "https") or not settings.url_host_allowed(host):
        raise SourceFetchRefused(f"source: {url!r} is not on PIXTOOLS_URL_SOURCE_HOSTS")
    try:
        addresses = await resolve_public(url, allow_private=settings.url_source_allow_private)
    except UnsafeWebhookUrl as exc:
        raise SourceFetchRefused(f"source: fetch of {url} refused: {exc}") from None
    target, host_header = pinned_url(url, addresses[0])
    extensions = {"sni_hostname": host} if url.startswith("https") else {}
    headers = {"Host": host_header, "User-Agent": "PixTools-Fetch/1"}
    limit = settings.max_upload_bytes
    async with client.stream("GET", target, headers=headers, extensions=extensions) as resp:
        if resp.is_redirect and "location" in resp.headers:
            return None, urljoin(url, resp.headers["location"])
        if resp.status_code >= 500:
            raise SourceFetchError(f"source: {url} answered HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise SourceFetchRefused(f"source: {url} answered HTTP {resp.status_code}")
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise SourceFetchRefused(f"source: {url} is larger than {limit} bytes")
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise SourceFetchRefused(f"source: {url} is larger than {limit} bytes")
    return bytes(body), None


async def fetch_url(url: str, settings: Settings) -> bytes:
    """The body at ``url``, through the guard; redirects followed (each hop checked)."""
    try:
        async with (
            asyncio.timeout(settings.url_source_timeout),
            httpx.AsyncClient(timeout=settings.url_source_timeout, follow_redirects=False) as c,
        ):
            for _ in range(MAX_REDIRECTS + 1):
                body, url_next = await _fetch_once(c, url, settings)
                if body is not None:
                    return body
                assert url_next is not None
                url = url_next
    except TimeoutError:
        raise SourceFetchError(
            f"source: fetch of {url} took over {settings.url_source_timeout} s"
        ) from None
    except httpx.HTTPError as exc:
        raise SourceFetchError(
            f"source: fetch of {url} failed: {type(exc).__name__}: {exc}"
        ) from exc
    raise SourceFetchRefused(f"source: more than {MAX_REDIRECTS} redirects")


class SharedSources:
    """The bytes of sources that jobs share by reference, most recently used first, up to
    ``limit`` bytes in all. Source objects are written once; a popular source is then read
    from memory by each job naming it instead of from the store (an S3 GET, or a file read
    into freshly faulted pages), and no job's own upload is kept (nothing shares it)."""

    def __init__(self, limit: int = SHARED_SOURCE_CACHE_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        """The bytes kept for ``key``, marked most recently used."""
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` unless it is over a quarter of the limit; drop the least recently used."""
        if len(data) > self.limit // 4 or key in self._items:
            return
        self._items[key] = data
        self.size += len(data)
        while self.size > self.limit:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)


_shared = SharedSources()


async def load_source(svc: Services, job_id: uuid.UUID, key: str, url: str | None) -> bytes:
    """The job's source bytes: from the store (or memory, for a source shared with other
    jobs), or (a URL source not fetched yet) fetched, checked as an upload would be, stored
    under ``key`` and its facts recorded."""
    if url is None:
        shared = not key.startswith(f"raw/{job_id}/")  # another job's source, by reference
        data = _shared.get(key) if shared else None
        if data is not None:
            return data
        try:
            data = await svc.objects.get(key)
        except ObjectNotFound:  # expired by the bucket's lifecycle rule, or removed by hand
            raise SourceFetchRefused(f"source: the stored source {key} is gone") from None
        if shared:
            _shared.put(key, data)
        return data
    try:
        return await svc.objects.get(key)  # an earlier output of the job fetched it
    except ObjectNotFound:
        pass
    data = await fetch_url(url, svc.settings)
    try:
        info = await asyncio.to_thread(probe, data, max_pixels=svc.settings.max_pixels)
    except ImageError as exc:
        raise SourceFetchRefused(f"source: {url}: {exc}") from None
    await svc.objects.put(key, data, info.content_type)
    facts = {
        "format": info.format,
        "content_type": info.content_type,
        "bytes": len(data),
        "width": info.width,
        "height": info.height,
    }
    await svc.jobs.set_source_facts(job_id, facts)
    log.info("job %s: fetched its source %s (%d bytes)", job_id, url, len(data))
    return data

"""The sources a submission can carry: the file itself, or a reference to an earlier job's
source, to a presigned upload, or to a URL (fetched later by the worker).

A source by reference is checked against its header facts (kept in the database, or read
from the stored object's head), so the API never holds the image itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from io import BytesIO
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image
from sqlalchemy.exc import IntegrityError

from pixtools.imaging import FORMATS, ImageError, extract_metadata, probe, sniff_format
from pixtools.imaging.decode import SourceInfo, pending_orientation
from pixtools.imaging.errors import CorruptImage, UnsupportedFormat
from pixtools.imaging.limits import apply_decoder_limits, check_pixels
from pixtools.jobs.errors import (
    JobError,
    Problem,
    field_error,
    image_refused,
    spec_refused,
)
from pixtools.jobs.submit import Placed
from pixtools.jobspec.job import JobSpec, SpecError, check_against_source, url_problem
from pixtools.services import Services
from pixtools.settings import Settings
from pixtools.store.jobs import SourceGone
from pixtools.store.objects import ObjectNotFound, source_key
from pixtools.store.sources import source_of_job

SNIFF_BYTES = 64
#: How much of a presigned upload is read to probe it: the header of any supported format
#: (JPEG's EXIF segment is at most 64 KiB) with room to spare.
HEAD_BYTES = 256 * 1024
UNSUPPORTED_TEXT = "not a supported image (JPEG, PNG, WebP, AVIF, GIF, TIFF, BMP)"


def _check_facts(spec: JobSpec, facts: dict[str, Any], settings: Settings) -> None:
    try:
        check_against_source(
            spec,
            facts["width"],
            facts["height"],
            source_format=facts["format"],
            max_pixels=settings.max_pixels,
        )
    except SpecError as exc:  # wrong in itself, or a result over the pixel or format limits
        raise spec_refused(exc) from None


@dataclass(slots=True)
class FileSource:
    """The image sent with the job (multipart): probed here, stored for this job alone."""

    body: bytes | bytearray
    filename: str
    info: SourceInfo | None = None

    async def check(self, services: Services, spec: JobSpec) -> None:
        """Sniff and probe the upload, then check the spec against its size and format."""
        settings = services.settings
        if sniff_format(self.body[:SNIFF_BYTES]) is None:
            raise field_error("file", UNSUPPORTED_TEXT, Problem.UNSUPPORTED)
        try:
            self.info = await asyncio.to_thread(probe, self.body, max_pixels=settings.max_pixels)
        except ImageError as exc:
            raise image_refused("file", exc) from None
        _check_facts(spec, self._facts(self.info), settings)

    def request_hash(self, spec_data: dict[str, Any]) -> str:
        """The hash that tells a replay of this request from a different one."""
        digest = hashlib.sha256(json.dumps(spec_data, sort_keys=True).encode())
        digest.update(hashlib.sha256(self.body).digest())
        digest.update(self.filename.encode())
        return digest.hexdigest()

    async def place(self, services: Services, owner: str, spec: JobSpec) -> Placed:  # noqa: ARG002  the Source protocol
        """Store the upload (and read its metadata if the spec asks) under a new job id."""
        assert self.info is not None, "check() comes first"
        metadata = None
        if spec.metadata:
            frames = self.info.frames  # probed in check(): not counted again
            metadata = await asyncio.to_thread(extract_metadata, self.body, frames=frames)
        job_id = uuid.uuid4()
        key = source_key(str(job_id), FORMATS[self.info.format].extension)
        await services.objects.put(key, self.body, self.info.content_type)
        facts = self._facts(self.info) | {"key": key}
        return Placed(job_id, facts, metadata, stored_key=key)

    def refused(self, exc: BaseException, placed: Placed) -> JobError | None:  # noqa: ARG002  the Source protocol
        """None: an upload's insert fails for no reason of its own."""
        return None

    def _facts(self, info: SourceInfo) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "format": info.format,
            "content_type": info.content_type,
            "bytes": len(self.body),
            "width": info.width,
            "height": info.height,
        }


@dataclass(frozen=True, slots=True)
class Reference:
    """A source named by reference: ``kind`` is "job", "upload" or "url"."""

    kind: str
    ref: str

    async def check(self, services: Services, spec: JobSpec) -> None:
        """Nothing: nothing is known of the source before it is resolved."""

    def request_hash(self, spec_data: dict[str, Any]) -> str:
        """The hash that tells a replay of this request from a different one."""
        data = json.dumps([spec_data, self.kind, self.ref], sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()

    async def place(self, services: Services, owner: str, spec: JobSpec) -> Placed:
        """Resolve the reference to its stored source and check the spec against it."""
        if self.kind == "url":
            job_id = uuid.uuid4()
            return Placed(job_id, _url_facts(services.settings, self.ref, job_id))
        if self.kind == "job":
            placed, whole = await _earlier_job(services, owner, self.ref)
        else:
            placed, whole = await _upload(services, owner, self.ref)
        _check_facts(spec, placed.facts, services.settings)
        if not spec.metadata:
            return replace(placed, metadata=None)
        if placed.metadata is None:
            return replace(placed, metadata=await _metadata(services, placed.facts, whole))
        return placed

    def refused(self, exc: BaseException, placed: Placed) -> JobError | None:
        """Not-found for a job gone meanwhile; conflict for an upload already made into a job."""
        if isinstance(exc, SourceGone):
            return field_error("source.job", "job not found", Problem.NOT_FOUND)
        if isinstance(exc, IntegrityError) and self.kind == "upload":
            job_id = placed.job_id
            return field_error(
                "source.upload",
                f'already made into job {job_id}; name it as {{"job": "{job_id}"}} for '
                "another job on the same source",
                Problem.CONFLICT,
                job_id=str(job_id),
            )
        return None


def _uuid(field: str, ref: str) -> uuid.UUID:
    try:
        return uuid.UUID(ref)
    except ValueError:
        raise field_error(field, "not an id returned by this API") from None


async def _metadata(
    services: Services, facts: dict[str, Any], whole: bytes | None
) -> dict[str, Any]:
    data = whole if whole is not None else await services.objects.get(facts["key"])
    return await asyncio.to_thread(extract_metadata, data)


async def _earlier_job(services: Services, owner: str, ref: str) -> tuple[Placed, None]:
    """The source object of one of ``owner``'s jobs, shared (no copy)."""
    ref_id = _uuid("source.job", ref)
    earlier = await source_of_job(services.db, ref_id, owner)
    if earlier is None:
        raise field_error("source.job", "job not found", Problem.NOT_FOUND)
    facts, metadata = dict(earlier[0]), earlier[1]
    if facts.get("width") is None:  # a URL source the worker has not fetched yet
        raise field_error(
            "source.job", "that job's source has not been fetched yet", Problem.CONFLICT
        )
    return Placed(uuid.uuid4(), facts, metadata, (ref_id, owner)), None


async def _upload(services: Services, owner: str, ref: str) -> tuple[Placed, bytes | None]:
    """An object stored through a presigned upload, checked on its first bytes (a ranged
    read) with the rules of a multipart upload, and the whole file when it is small enough
    to have been read whole. The upload's one job takes its id."""
    settings = services.settings
    job_id = _uuid("source.upload", ref)
    upload = await services.uploads.get(job_id, owner)
    if upload is None:
        raise field_error("source.upload", "no such upload", Problem.NOT_FOUND)
    try:
        size, head = await services.objects.read_head(upload.key, HEAD_BYTES)
    except ObjectNotFound:
        raise field_error(
            "source.upload",
            "nothing has been uploaded yet (POST the file to the URL returned by "
            "POST /api/v1/uploads first)",
            Problem.CONFLICT,
        ) from None
    limit = min(upload.max_bytes, settings.max_upload_bytes)
    if size > limit:
        raise field_error("source.upload", f"larger than {limit} bytes", Problem.TOO_LARGE)
    whole = head if size <= len(head) else None
    try:
        if whole is not None:  # all of it is here: the full check, as for a multipart upload
            info = await asyncio.to_thread(probe, whole, max_pixels=settings.max_pixels)
        else:
            info = await asyncio.to_thread(probe_head, head, max_pixels=settings.max_pixels)
    except ImageError as exc:
        raise image_refused("source.upload", exc) from None
    facts = {
        "filename": "upload",
        "format": info.format,
        "content_type": info.content_type,
        "bytes": size,
        "width": info.width,
        "height": info.height,
        "key": upload.key,
    }
    return Placed(job_id, facts), whole


def _url_facts(settings: Settings, url: str, job_id: uuid.UUID) -> dict[str, Any]:
    """A URL the worker fetches through the SSRF guard (off unless configured, hosts on an
    allowlist); its facts stay unknown until then."""
    if not settings.url_sources:
        raise field_error(
            "source.url", "URL sources are off on this server (PIXTOOLS_URL_SOURCES=true)"
        )
    problem = url_problem(url)
    if problem is not None:
        raise field_error("source.url", problem)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not settings.url_host_allowed(host):
        raise field_error(
            "source.url", f"host {host!r} is not on this server's PIXTOOLS_URL_SOURCE_HOSTS"
        )
    name = unquote(parts.path.rsplit("/", 1)[-1]) or host
    return {
        "filename": name[-255:],
        "format": None,
        "content_type": None,
        "bytes": None,
        "width": None,
        "height": None,
        "url": url,
        "key": f"raw/{job_id}/source",
    }


def probe_head(head: bytes, *, max_pixels: int) -> SourceInfo:
    """Format and upright size from a file's first bytes (no structure walk: the rest of the
    file is not here; the worker's decode checks it whole). Frames are not counted (the
    worker's decode bounds them by the pixel limit)."""
    apply_decoder_limits(max_pixels)
    fmt = sniff_format(head[:SNIFF_BYTES])
    if fmt is None:
        raise UnsupportedFormat(UNSUPPORTED_TEXT)
    try:
        with Image.open(BytesIO(head), formats=[FORMATS[fmt].pil_name]) as im:
            width, height = im.size
            turned = pending_orientation(im, fmt) in (5, 6, 7, 8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CorruptImage(f"image header declares too many pixels ({exc})") from None
    except Exception as exc:
        raise CorruptImage(f"corrupt {fmt.upper()} header: {exc}") from None
    if width < 1 or height < 1:
        raise CorruptImage(f"{fmt.upper()} header declares an empty image")
    check_pixels(width, height, 1, max_pixels)
    if turned:
        width, height = height, width
    return SourceInfo(fmt, FORMATS[fmt].content_type, width, height, 1)

"""Reading a job submission's multipart body: streamed straight into memory, capped.

Litestar's generic form parsing spools every file part over 1 MiB to a temporary file, one
thread hop per chunk, and the handler then reads it back: about 20 ms of CPU for a 4 MB
photo. Here the body is parsed as it arrives, the image goes into one buffer, and the size
cap is enforced while streaming (413 as soon as it is exceeded, before the rest is read).
"""

from __future__ import annotations

import email.message
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from pixtools.api.errors import field_error
from pixtools.jobs.sources import FileSource

MAX_SPEC_BYTES = 256 * 1024


@dataclass
class JobForm:
    """The parts of a multipart submission, as they arrive."""

    spec: str | None = None
    #: The upload itself, in the buffer it streamed into: copying a 4 MB photo into a ``bytes``
    #: cost a 4 MB copy and ~2,000 page faults per submission (measured).
    file: bytearray | None = None
    filename: str | None = None
    _parts: dict[str, bytearray] = field(default_factory=dict)


async def file_submission(
    request: Request[Any, Any, Any], max_file_bytes: int
) -> tuple[str, FileSource]:
    """The spec (JSON text) and the image of a multipart submission, both required."""
    form = await read_job_form(request, max_file_bytes=max_file_bytes)
    if form.spec is None:
        raise field_error("spec", "a form field with the job spec as JSON text is required")
    if form.file is None:
        raise field_error("file", "a file field with the image is required")
    return form.spec, FileSource(form.file, (form.filename or "upload")[-255:])


async def read_job_form(request: Request[Any, Any, Any], *, max_file_bytes: int) -> JobForm:
    """The ``file`` and ``spec`` parts of a ``multipart/form-data`` body."""
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary", "")
    if ctype != "multipart/form-data" or not boundary:
        raise field_error("file", "send multipart/form-data with a file part and a spec part")
    form = JobForm()
    current: MultipartSegment | None = None
    try:
        with PushMultipartParser(boundary, max_segment_count=16, strict=False) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        current = event
                        _start_part(form, event)
                    elif event and current is not None:
                        _append(form, current.name or "", event, max_file_bytes)
                    elif event is None:
                        current = None
                if parser.closed:
                    break
    except MultipartError as exc:
        raise field_error("file", f"malformed multipart body ({exc})") from None
    return _finish(form)


def _append(form: JobForm, name: str, data: bytes | bytearray, max_file_bytes: int) -> None:
    """Add a chunk to its part, enforcing the part's size cap as it streams in."""
    buf = form._parts.get(name)
    if buf is None:
        return  # a part we do not use: skipped, not kept
    buf += data
    if name == "file" and len(buf) > max_file_bytes:
        raise field_error("file", _too_large(max_file_bytes), 413)
    if name == "spec" and len(buf) > MAX_SPEC_BYTES:
        raise field_error("spec", f"larger than {MAX_SPEC_BYTES} bytes")


def _finish(form: JobForm) -> JobForm:
    """Move the collected parts into the form's fields (the spec decoded as UTF-8)."""
    if "spec" in form._parts:
        try:
            form.spec = form._parts.pop("spec").decode("utf-8")
        except UnicodeDecodeError:
            raise field_error("spec", "must be UTF-8 text") from None
    if "file" in form._parts:
        form.file = form._parts.pop("file")
    return form


def _start_part(form: JobForm, segment: MultipartSegment) -> None:
    """Exactly one ``file`` part (an upload, with a filename) and one ``spec`` part (a text
    field): a second part of either name is refused, never joined to the first."""
    name = segment.name
    if name not in ("file", "spec"):
        return
    if name in form._parts:
        raise field_error(name, f"send exactly one {name} part (got a second one)")
    if name == "spec" and segment.filename is not None:
        raise field_error("spec", "must be a text field with the JSON, not a file part")
    form._parts[name] = bytearray()
    if name == "file":
        filename = segment.filename
        if filename is None:
            filename = _extended_filename(segment)
        if filename is None:
            # A text field named "file" is not an upload.
            raise field_error("file", "must be a file part (with a filename)")
        form.filename = filename


def _extended_filename(segment: MultipartSegment) -> str | None:
    """The RFC 5987/2231 ``filename*=UTF-8''...`` form, which the parser does not decode."""
    message = email.message.Message()
    for name, value in segment.headerlist:
        if name.lower() == "content-disposition":
            message["content-disposition"] = value
    return message.get_filename()


@dataclass
class SubmitOperation(Operation):
    """OpenAPI for the submission: the body is read by ``read_job_form``, not by Litestar."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file", "spec"],
                        properties={
                            "file": Schema(
                                type=OpenAPIType.STRING,
                                format=OpenAPIFormat.BINARY,
                                description="the image: JPEG, PNG, WebP, AVIF, GIF, TIFF or BMP",
                            ),
                            "spec": Schema(
                                type=OpenAPIType.STRING,
                                description="the job spec as JSON text (see /api/v1/operations)",
                            ),
                        },
                    )
                ),
                # A source by reference (docs/api.md, "Sources by reference").
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["source", "outputs"],
                        properties={
                            "source": Schema(
                                type=OpenAPIType.OBJECT,
                                description='one of {"job": id}, {"upload": id}, {"url": url}',
                                properties={
                                    kind: Schema(type=OpenAPIType.STRING)
                                    for kind in ("job", "upload", "url")
                                },
                                min_properties=1,
                                max_properties=1,
                            ),
                            "outputs": Schema(
                                type=OpenAPIType.ARRAY,
                                items=Schema(type=OpenAPIType.OBJECT),
                                description="as in the spec (see /api/v1/operations)",
                            ),
                        },
                    )
                ),
            },
        )


def _too_large(limit: int) -> str:
    """The 413 detail names the limit and the setting that raises it."""
    return (
        f"larger than the upload limit of {limit:,} bytes ({limit / 2**20:.4g} MiB, "
        "PIXTOOLS_MAX_UPLOAD_BYTES)"
    )

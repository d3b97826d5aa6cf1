"""``render_output``: one output's pipeline, source bytes in, encoded bytes (or a result) out.

decode (safe, DCT-domain shrink when the pipeline starts by shrinking) -> auto-orient ->
each step via the op registry -> prepare for the target format -> encode.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pixtools.imaging.context import StepContext
from pixtools.imaging.decode import decode, open_source
from pixtools.imaging.encode import encode, prepare_for_format
from pixtools.imaging.errors import ImageError, OperationError, TooManyPixels
from pixtools.imaging.formats import FORMATS
from pixtools.jobspec.ops import OPS, Convert, Step, analysis_only, op_of
from pixtools.jobspec.queues import STANDARD
from pixtools.jobspec.sizes import format_size_problem, pixels_problem, step_sizes

OpFunction = Callable[[Image.Image, Any, StepContext], Image.Image]
#: Told each stage's name (``decode``, an op's name, ``encode``) and its seconds.
OnStep = Callable[[str, float], None]
#: Told the decoded source (upright, sRGB, perhaps drafted smaller) and its full size,
#: before any step runs; it must not modify the image.
OnDecoded = Callable[[Image.Image, tuple[int, int]], None]

# What a render holds, per pixel of its largest image: that image, the step's input and a
# temporary (Pillow keeps RGB in 4 bytes a pixel), plus the encoder's own working memory.
# Measured (a 1x1 PNG resized to 4000x4000, with and without a rotate; peak RSS growth per
# output pixel): PNG and TIFF 4-8, JPEG 7, WebP 10, GIF 12, AVIF 22 bytes;
# tests/unit/imaging/test_budget.py holds every format under its estimate.
WORK_BYTES_PER_PIXEL = 12
ENCODER_BYTES_PER_PIXEL: dict[str, int] = {
    "png": 0,
    "tiff": 0,
    "jpeg": 3,
    "webp": 6,
    "gif": 8,
    "avif": 18,
}

# JPEG sources that will shrink decode at 1/2, 1/4 or 1/8 scale (libjpeg-turbo's scaled
# IDCT) to the smallest size still >= DRAFT_HEADROOM x the size the resize needs; Lanczos
# does the rest. Measured against a full decode + Lanczos (bench/imaging.py): 12 MP -> 800
# px is 4x faster at PSNR ~48 dB; headroom 2 doubles the decode cost for ~+5 dB.
DRAFT_HEADROOM = 1.0


@dataclass(frozen=True)
class Rendered:
    """One output: the encoded image (None for analysis-only outputs) and any result."""

    data: bytes | None
    format: str | None
    content_type: str | None
    extension: str | None
    width: int | None
    height: int | None
    result: dict[str, Any] | None


_resolved: dict[str, OpFunction] = {}


def op_function(name: str) -> OpFunction:
    """The implementation of an op, imported on first use (ML ops import onnxruntime then)."""
    fn = _resolved.get(name)
    if fn is None:
        fn = _resolved[name] = OPS[name].resolve()
    return fn


def _op_name(step: Step) -> str:
    tag = type(step).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def _apply(step: Step, index: int, im: Image.Image, ctx: StepContext) -> Image.Image:
    """Run one step. A standard op is a pure function of the pixels and its params, so any
    error it raises is permanent: it becomes an ``OperationError`` naming the step (which
    the worker does not retry) instead of three attempts at the same failure."""
    name = _op_name(step)
    try:
        return op_function(name)(im, step, ctx)
    except (ImageError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(f"step {index} ({name}): {exc}") from None
    except Exception as exc:
        if OPS[name].queue != STANDARD:
            raise  # ML runtimes also fail for reasons of their own (models, sessions)
        raise OperationError(f"step {index} ({name}) failed: {exc}") from None


def draft_size(steps: Sequence[Step], size: tuple[int, int]) -> tuple[int, int] | None:
    """The smallest upright size the pipeline can start from without losing output quality.

    Only when the first step that changes pixels is a shrinking ``resize`` (steps that
    commute with scaling may come before it): then decoding at a smaller size is exact up
    to resampling. Or when every step is an analysis op that shrinks its input to at most
    ``analysis_side`` pixels a side (face detection, moderation): then each side is kept at
    least that (or its full size), and results map back to source pixels as after a resize.
    """
    if analysis_only(steps):
        sides = [op_of(step).analysis_side for step in steps]
        if any(side is None for side in sides):
            return None
        side = max(s for s in sides if s is not None)
        want = (min(size[0], side), min(size[1], side))
        return None if want == size else want
    width, height = size
    for step in steps:
        if step.commutes_with_scaling():
            width, height = step.output_size(width, height)
            continue
        region = step.resample_region(width, height)
        if region is None:
            return None
        (out_w, out_h), (left, top, right, bottom) = region
        need_w = math.ceil(width * out_w / (right - left) * DRAFT_HEADROOM)
        need_h = math.ceil(height * out_h / (bottom - top) * DRAFT_HEADROOM)
        if need_w >= width or need_h >= height:
            return None
        # Undo the quarter turns: the draft size is in the decoded (upright) orientation.
        return (need_w, need_h) if (width, height) == size else (need_h, need_w)
    return None


def render_bytes(steps: Sequence[Step], fmt: str, stored_size: tuple[int, int]) -> int:
    """An upper estimate of the memory a render of ``steps`` takes, from the source's
    format and stored size (its orientation not read yet: both ways are counted).

    The decoded source stays alive through the steps (4 bytes a pixel); the largest image
    of the chain (the source or a step's result) costs ``WORK_BYTES_PER_PIXEL`` and, when
    the output is encoded, its format's encoder share.
    """
    width, height = stored_size
    peak = width * height
    for size in ((width, height), (height, width)):
        for w, h in step_sizes(steps, *size):
            peak = max(peak, w * h)
    convert = steps[-1] if steps and isinstance(steps[-1], Convert) else None
    out_fmt = None if analysis_only(steps) else (convert.format if convert else fmt)
    encoder = ENCODER_BYTES_PER_PIXEL.get(out_fmt, 0) if out_fmt is not None else 0
    return 4 * width * height + peak * (WORK_BYTES_PER_PIXEL + encoder)


def source_render_bytes(source: bytes | bytearray, steps: Sequence[Step], max_pixels: int) -> int:
    """``render_bytes`` from the source's header (read, never decoded): what a worker
    reserves (``pixtools.imaging.budget``) before it renders. Raises like ``render_output``
    for a source it would refuse."""
    im, fmt, _frames = open_source(source, max_pixels, count_frames=False)
    with im:
        return render_bytes(steps, fmt, im.size)


@contextmanager
def _timed(on_step: OnStep | None, name: str) -> Iterator[None]:
    """Tell ``on_step`` how long the block took, even when it raised."""
    if on_step is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        on_step(name, time.perf_counter() - start)


def render_output(
    source: bytes,
    steps: Sequence[Step],
    *,
    max_pixels: int,
    on_step: OnStep | None = None,
    on_decoded: OnDecoded | None = None,
) -> Rendered:
    """Run one output's steps on the source and encode the result; ``on_step``, when given,
    is told the time of the decode, of each step and of the encode; ``on_decoded`` is shown
    the decoded source (what the worker makes the source's preview from, saving a decode).

    Raises ``ImageError`` subclasses for anything the input or the steps cause (all
    permanent); other exceptions are bugs or environment failures.
    """
    with _timed(on_step, "decode"):
        decoded = decode(
            source, max_pixels=max_pixels, plan_draft=lambda size: draft_size(steps, size)
        )
    im = decoded.image
    if on_decoded is not None:
        on_decoded(im, decoded.source_size)
    ctx = StepContext(
        source_format=decoded.format,
        source_size=decoded.source_size,
        exif=decoded.exif,
        icc_profile=decoded.icc_profile,
        xmp=decoded.xmp,
    )
    if im.size != decoded.source_size:  # decoded smaller in the DCT domain
        ctx.nominal_size = decoded.source_size
        ctx.compose(
            (
                decoded.source_size[0] / im.width,
                0.0,
                0.0,
                0.0,
                decoded.source_size[1] / im.height,
                0.0,
            )
        )
    # The render-time guard: the same sizes the API checked at submit, checked again before
    # any step allocates (a job submitted under an older limit, or by another client).
    for j, (width, height) in enumerate(step_sizes(steps, *decoded.source_size)):
        problem = pixels_problem(width, height, max_pixels)
        if problem is not None:
            raise TooManyPixels(f"step {j} ({_op_name(steps[j])}): {problem}")
    for j, step in enumerate(steps):
        with _timed(on_step, _op_name(step)):
            im = _apply(step, j, im, ctx)

    if analysis_only(steps):
        return Rendered(None, None, None, None, None, None, ctx.result)

    convert = steps[-1] if steps and isinstance(steps[-1], Convert) else None
    fmt = convert.format if convert is not None else decoded.format
    if convert is None:
        im = prepare_for_format(im, fmt, ctx)
    problem = format_size_problem(fmt, im.width, im.height)
    if problem is not None:
        raise OperationError(problem)
    with _timed(on_step, "encode"):
        data = encode(im, fmt, convert, ctx)
    info = FORMATS[fmt]
    return Rendered(
        data, fmt, info.content_type, info.extension, im.width, im.height, ctx.result or None
    )

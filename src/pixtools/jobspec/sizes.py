"""Every step's output size, computed from the source's size alone, before any pixel exists.

The geometry of each op is a pure function of its input size and params, so the API can
refuse at submit what would exceed the pixel limit or what the output format cannot store
(a 1x1 PNG asking for 16384x16384 WebP took 2 GB before WebP refused it), and the engine
uses the same functions to render, so prediction and result cannot drift apart. No Pillow
here: the spec stays importable without the image library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the ops' Structs call the geometry here: no import at run time
    from pixtools.jobspec.ops import Resize, Step

Box = tuple[float, float, float, float]
Matrix = tuple[float, float, float, float, float, float]

#: The largest side each output format can be written with (by the codec Pillow uses).
FORMAT_MAX_SIDE: dict[str, int] = {
    "jpeg": 65_500,  # libjpeg(-turbo)'s JPEG_MAX_DIMENSION
    "webp": 16_383,  # VP8/VP8L store 14-bit sizes
    "avif": 32_768,  # libavif's default image dimension limit, for encoder and decoders
    "gif": 65_535,  # 16-bit logical screen
    "png": 2**31 - 1,
    "tiff": 2**32 - 1,
    "bmp": 2**31 - 1,
}


def resize_geometry(width: int, height: int, p: Resize) -> tuple[tuple[int, int], Box]:
    """Output size and the region of the input it is made from, for an input of that size.

    contain/inside: the largest size inside the box keeping aspect. cover: the box exactly,
    from the largest region of the box's aspect (placed by gravity; ``smart`` is centred
    here and placed by ``resize``). fill: the box exactly, stretched. With one dimension
    given every mode keeps aspect. Without ``upscale`` no axis grows: a box larger than the
    image is first scaled down, keeping its aspect, until it fits.
    """
    full: Box = (0.0, 0.0, float(width), float(height))
    bw, bh = p.width, p.height
    if p.fit in ("contain", "inside") or bw is None or bh is None:
        scales = [s for s in (bw and bw / width, bh and bh / height) if s]
        scale = min(scales)
        if not p.upscale:
            scale = min(scale, 1.0)
        size = (
            bw if bw is not None and scale == bw / width else max(1, round(width * scale)),
            bh if bh is not None and scale == bh / height else max(1, round(height * scale)),
        )
        return size, full
    if not p.upscale:
        k = min(1.0, width / bw, height / bh)
        bw, bh = max(1, min(width, round(bw * k))), max(1, min(height, round(bh * k)))
    if p.fit == "fill":
        return (bw, bh), full
    scale = max(bw / width, bh / height)
    rw, rh = min(float(width), bw / scale), min(float(height), bh / scale)
    left, top = (width - rw) / 2, (height - rh) / 2
    if p.gravity == "north":
        top = 0.0
    elif p.gravity == "south":
        top = height - rh
    elif p.gravity == "west":
        left = 0.0
    elif p.gravity == "east":
        left = width - rw
    return (bw, bh), (left, top, left + rw, top + rh)


def rotation_matrix(width: int, height: int, degrees: float) -> tuple[tuple[int, int], Matrix]:
    """Canvas size and the output->input affine map of a counter-clockwise rotation with
    the canvas expanded to hold the whole image (the same map ``Image.rotate`` builds)."""
    angle = -math.radians(degrees % 360.0)
    cos, sin = round(math.cos(angle), 15), round(math.sin(angle), 15)
    cx, cy = width / 2, height / 2
    a, b, d, e = cos, sin, -sin, cos
    c = a * -cx + b * -cy + cx
    f = d * -cx + e * -cy + cy
    xs, ys = [], []
    for x, y in ((0, 0), (width, 0), (width, height), (0, height)):
        xs.append(a * x + b * y + c)
        ys.append(d * x + e * y + f)
    nw = math.ceil(max(xs)) - math.floor(min(xs))
    nh = math.ceil(max(ys)) - math.floor(min(ys))
    ox, oy = -(nw - width) / 2.0, -(nh - height) / 2.0
    return (nw, nh), (a, b, a * ox + b * oy + c, d, e, d * ox + e * oy + f)


def step_size(step: Step, width: int, height: int) -> tuple[int, int]:
    """The size of ``step``'s result for an input of ``width`` x ``height`` (each op's
    params Struct knows its own: ``Step.output_size``)."""
    return step.output_size(width, height)


def step_sizes(steps: Sequence[Step], width: int, height: int) -> list[tuple[int, int]]:
    """The size after each step, in order, for an upright source of that size."""
    sizes = []
    for step in steps:
        width, height = step_size(step, width, height)
        sizes.append((width, height))
    return sizes


def format_size_problem(fmt: str, width: int, height: int) -> str | None:
    """Why ``fmt`` cannot store a ``width`` x ``height`` image, or None when it can."""
    limit = FORMAT_MAX_SIDE[fmt]
    if max(width, height) > limit:
        return (
            f"the output would be {width}x{height}; {fmt.upper()} images are at most "
            f"{limit:,} pixels a side"
        )
    return None


def pixels_problem(width: int, height: int, max_pixels: int) -> str | None:
    """Why a ``width`` x ``height`` intermediate or result is refused, or None."""
    if width * height > max_pixels:
        return (
            f"the result would be {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} (PIXTOOLS_MAX_PIXELS)"
        )
    return None

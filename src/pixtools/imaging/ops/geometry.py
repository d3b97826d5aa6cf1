"""``crop``, ``rotate`` and ``flip``: each records its inverse map in ``ctx`` so analysis
ops can report boxes in source pixels."""

from __future__ import annotations

from PIL import Image

from pixtools.imaging.context import StepContext
from pixtools.imaging.errors import OperationError
from pixtools.jobspec.ops import Crop, Flip, Rotate
from pixtools.jobspec.sizes import Matrix, rotation_matrix

RGBA = tuple[int, int, int, int]

_WHITE: RGBA = (255, 255, 255, 255)
_TRANSPARENT: RGBA = (0, 0, 0, 0)


def crop(im: Image.Image, p: Crop, ctx: StepContext) -> Image.Image:
    """Cut the box; it must lie inside the image (else ``OperationError``)."""
    right, bottom = p.left + p.width, p.top + p.height
    if right > im.width or bottom > im.height:
        raise OperationError(
            f"crop box (left {p.left}, top {p.top}, width {p.width}, height {p.height}) "
            f"lies outside the {im.width}x{im.height} image"
        )
    if (p.left, p.top, right, bottom) == (0, 0, im.width, im.height):
        return im
    ctx.compose((1.0, 0.0, float(p.left), 0.0, 1.0, float(p.top)))
    return im.crop((p.left, p.top, right, bottom))


def parse_colour(text: str) -> RGBA:
    """``#rgb``, ``#rrggbb`` or ``#rrggbbaa`` (the ``#`` optional) as an RGBA tuple."""
    digits = text.removeprefix("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) == 6:
        digits += "ff"
    if len(digits) != 8:
        raise OperationError(f"background: {text!r} is not a hex colour")
    r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


def _fill_for(im: Image.Image, colour: RGBA) -> tuple[Image.Image, float | tuple[int, ...]]:
    """The image in a mode that can show ``colour``, and the colour in that mode."""
    r, g, b, a = colour
    grey = r == g == b
    mode = im.mode
    if a < 255 and "A" not in mode:
        mode = mode + "A"
    if not grey and mode in ("L", "LA"):
        mode = "RGB" if mode == "L" else "RGBA"
    if mode != im.mode:
        im = im.convert(mode)
    fill: dict[str, float | tuple[int, ...]] = {
        "L": r,
        "LA": (r, a),
        "RGB": (r, g, b),
        "RGBA": (r, g, b, a),
    }
    return im, fill[mode]


_TRANSPOSE = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}


def rotate(im: Image.Image, p: Rotate, ctx: StepContext) -> Image.Image:
    """Rotate counter-clockwise. Multiples of 90 are exact transpositions; other angles
    resample bicubically onto an expanded canvas filled with ``background`` (default:
    transparent when the image has alpha, else white)."""
    quarter_turns = p.degrees / 90
    width, height = im.size
    if quarter_turns == round(quarter_turns):
        k = round(quarter_turns) % 4
        if k == 0:
            return im
        m: Matrix = {
            1: (0.0, -1.0, float(width), 1.0, 0.0, 0.0),
            2: (-1.0, 0.0, float(width), 0.0, -1.0, float(height)),
            3: (0.0, 1.0, 0.0, -1.0, 0.0, float(height)),
        }[k]
        ctx.compose(m)
        if ctx.nominal_size is not None and k % 2:
            ctx.nominal_size = (ctx.nominal_size[1], ctx.nominal_size[0])
        return im.transpose(_TRANSPOSE[k])
    if p.background is not None:
        colour = parse_colour(p.background)
    else:
        colour = _TRANSPARENT if "A" in im.mode else _WHITE
    im, fill = _fill_for(im, colour)
    size, matrix = rotation_matrix(width, height, p.degrees)
    ctx.compose(matrix)
    return im.transform(
        size, Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC, fillcolor=fill
    )


def flip(im: Image.Image, p: Flip, ctx: StepContext) -> Image.Image:
    """Mirror left-right (``horizontal``) or top-bottom (``vertical``)."""
    if p.direction == "horizontal":
        ctx.compose((-1.0, 0.0, float(im.width), 0.0, 1.0, 0.0))
        return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    ctx.compose((1.0, 0.0, 0.0, 0.0, -1.0, float(im.height)))
    return im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)

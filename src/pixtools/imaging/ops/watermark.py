"""``watermark``: text over the image in the bundled DejaVu Sans (no system font assumed)."""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pixtools.imaging.context import StepContext
from pixtools.jobspec.ops import Watermark

FONT_PATH = Path(__file__).resolve().parent.parent / "fonts" / "DejaVuSans.ttf"
_MIN_FONT_PX = 6
# A FreeType face is not safe to use from two threads at once; the worker runs several.
_FONT_LOCK = threading.Lock()


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """The bundled font at ``size`` pixels (cached: loading parses the file)."""
    return ImageFont.truetype(str(FONT_PATH), size)


def _text_layer(text: str, size: int, opacity: float) -> Image.Image:
    """White text with a dark outline, so it reads on light and dark images, at ``opacity``."""
    stroke = max(1, round(size / 16))
    with _FONT_LOCK:
        face = font(size)
        box = face.getbbox(text, stroke_width=stroke)
        left, top, right, bottom = (math.floor(v) for v in box)
        layer = Image.new("LA", (max(1, right - left + 1), max(1, bottom - top + 1)), (0, 0))
        ImageDraw.Draw(layer).text(
            (-left, -top),
            text,
            font=face,
            fill=(255, 255),
            stroke_width=stroke,
            stroke_fill=(0, 255),
        )
    if opacity < 1:
        alpha = layer.getchannel("A").point(lambda a: round(a * opacity))
        layer.putalpha(alpha)
    return layer


def _text_box(text: str, size: int) -> tuple[int, int]:
    """Width and height of the text layer at ``size`` pixels, measured without drawing."""
    stroke = max(1, round(size / 16))
    with _FONT_LOCK:
        left, top, right, bottom = font(size).getbbox(text, stroke_width=stroke)
    return (math.floor(right) - math.floor(left) + 1, math.floor(bottom) - math.floor(top) + 1)


def fitted_size(text: str, size: int, room: tuple[int, int]) -> int:
    """The largest font size up to ``size`` whose text fits ``room`` (never below the
    minimum), found by measuring, so the text is drawn once, at its final size: drawn
    first at ``size`` a 200-character line at size 1 made a layer of gigabytes."""
    width, height = _text_box(text, size)
    while size > _MIN_FONT_PX and (width > room[0] or height > room[1]):
        # Text scales with its size, give or take hinting: aim proportionally, then check.
        scale = min(room[0] / width, room[1] / height)
        size = max(_MIN_FONT_PX, min(size - 1, int(size * scale)))
        width, height = _text_box(text, size)
    return size


def watermark(im: Image.Image, p: Watermark, ctx: StepContext) -> Image.Image:
    """Text ``size`` x image-width pixels high (shrunk to fit the image), at ``position``."""
    del ctx
    width, height = im.size
    margin = max(1, round(min(width, height) * 0.02))
    room = (max(1, width - 2 * margin), max(1, height - 2 * margin))
    size = fitted_size(p.text, max(_MIN_FONT_PX, round(p.size * width)), room)
    layer = _text_layer(p.text, size, p.opacity)
    lw, lh = layer.size
    x = {"left": margin, "right": width - margin - lw}
    y = {"top": margin, "bottom": height - margin - lh}
    if p.position == "center":
        pos = ((width - lw) // 2, (height - lh) // 2)
    else:
        vertical, horizontal = p.position.split("-")
        pos = (x[horizontal], y[vertical])
    # Clip the text to the image (it can only overflow at the minimum font size).
    clip = (max(0, -pos[0]), max(0, -pos[1]))
    pos = (max(0, pos[0]), max(0, pos[1]))
    layer = layer.crop(
        (
            clip[0],
            clip[1],
            clip[0] + min(lw - clip[0], width - pos[0]),
            clip[1] + min(lh - clip[1], height - pos[1]),
        )
    )
    alpha = layer.getchannel("A")
    out = im.copy()  # ops never mutate their input
    if out.mode == "RGBA":
        # Composite (not paste) so that transparent pixels under the text become the text.
        out.alpha_composite(layer.convert("RGBA"), dest=pos)
    elif out.mode == "LA":
        out.paste(
            Image.merge("LA", (layer.getchannel("L"), Image.new("L", layer.size, 255))), pos, alpha
        )
    else:
        ink = layer.getchannel("L") if out.mode == "L" else layer.convert("RGB")
        out.paste(ink, pos, mask=alpha)
    return out

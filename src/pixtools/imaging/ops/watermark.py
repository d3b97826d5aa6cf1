"""``watermark``: text over the image in the bundled DejaVu Sans (no system font assumed)."""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pixtools.imaging.context import StepContext
from pixtools.spec.ops import Watermark

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


def watermark(im: Image.Image, p: Watermark, ctx: StepContext) -> Image.Image:
    """Text ``size`` x image-width pixels high (shrunk to fit the width), at ``position``."""
    del ctx
    width, height = im.size
    margin = max(1, round(min(width, height) * 0.02))
    size = max(_MIN_FONT_PX, round(p.size * width))
    layer = _text_layer(p.text, size, p.opacity)
    room = max(1, width - 2 * margin)
    if layer.width > room and size > _MIN_FONT_PX:
        size = max(_MIN_FONT_PX, int(size * room / layer.width))
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

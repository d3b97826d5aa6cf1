"""``watermark``: text over the image in the bundled DejaVu Sans (no system font assumed)."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pixtools.imaging.context import StepContext
from pixtools.spec.ops import Watermark

FONT_PATH = Path(__file__).resolve().parent.parent / "fonts" / "DejaVuSans.ttf"
_MIN_FONT_PX = 6


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """The bundled font at ``size`` pixels (cached: loading parses the file)."""
    return ImageFont.truetype(str(FONT_PATH), size)


def _text_layer(text: str, size: int, opacity: float) -> Image.Image:
    """White text with a dark outline, so it reads on light and dark images, at ``opacity``."""
    face = font(size)
    stroke = max(1, round(size / 16))
    left, top, right, bottom = (math.floor(v) for v in face.getbbox(text, stroke_width=stroke))
    layer = Image.new("LA", (max(1, right - left + 1), max(1, bottom - top + 1)), (0, 0))
    draw = ImageDraw.Draw(layer)
    draw.text(
        (-left, -top), text, font=face, fill=(255, 255), stroke_width=stroke, stroke_fill=(0, 255)
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
    out = im.copy()  # ops never mutate their input
    if out.mode == "RGBA":
        # Composite (not paste) so transparent pixels under the text become the text.
        overlay = Image.new("RGBA", out.size, (0, 0, 0, 0))
        overlay.paste(layer.convert("RGBA"), pos)
        return Image.alpha_composite(out, overlay)
    ink = layer.getchannel("L") if out.mode in ("L", "LA") else layer.convert("RGB")
    if out.mode == "LA":
        out.paste(
            Image.merge("LA", (ink, Image.new("L", ink.size, 255))), pos, layer.getchannel("A")
        )
        return out
    out.paste(ink, pos, mask=layer.getchannel("A"))
    return out

"""Decode-time limits in one place: Pillow's bomb protection set from ``max_pixels``.

Pillow warns (``DecompressionBombWarning``) above ``Image.MAX_IMAGE_PIXELS`` and raises above
twice that. We check the declared size ourselves before any decode, set Pillow's limit to the
same value, and turn its warning into an error, so no path decodes an over-limit image.
"""

from __future__ import annotations

import warnings

from PIL import Image

from pixtools.imaging.errors import TooManyPixels


def apply_decoder_limits(max_pixels: int) -> None:
    """Set Pillow's limit to ``max_pixels`` and make its bomb warning an error (idempotent)."""
    if max_pixels < 1:
        raise ValueError("max_pixels must be positive")
    Image.MAX_IMAGE_PIXELS = max_pixels
    for action, _msg, category, _mod, _lineno in warnings.filters:
        if category is Image.DecompressionBombWarning and action == "error":
            return
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def check_pixels(width: int, height: int, frames: int, max_pixels: int) -> None:
    """Raise ``TooManyPixels`` when ``width*height*frames`` exceeds ``max_pixels``."""
    pixels = width * height * max(frames, 1)
    if pixels > max_pixels:
        frames_note = f" in {frames} frames" if frames > 1 else ""
        raise TooManyPixels(
            f"image declares {pixels:,} pixels ({width}x{height}{frames_note}); "
            f"the limit is {max_pixels:,}"
        )

"""Colour management: keep a source's ICC profile, or convert the pixels to sRGB.

Policy (docs/imaging.md): RGB and greyscale pixels keep their embedded profile in every output
format that can carry one (JPEG, PNG, WebP, AVIF, TIFF); they are converted to sRGB for GIF
and BMP, and before ops that leave the profile's colour space (``grayscale``). CMYK and Lab
sources are always converted to sRGB: through their profile when they embed one, else with
Pillow's device conversion. Untagged pixels are sRGB by convention.
"""

from __future__ import annotations

from functools import cache, lru_cache
from io import BytesIO

from PIL import Image, ImageCms

_RENDERING_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
# NOCACHE: lcms's one-pixel cache is the only part of a transform that is not thread-safe,
# and the cached transforms are shared by the worker's threads.
_FLAGS = ImageCms.Flags.BLACKPOINTCOMPENSATION | ImageCms.Flags.NOCACHE


def icc_colour_space(icc: bytes | None) -> str | None:
    """The data colour space an ICC profile describes (``RGB``, ``GRAY``, ``CMYK``...)."""
    if not icc or len(icc) < 20:
        return None
    return icc[16:20].decode("latin-1").strip() or None


@cache
def srgb_profile() -> ImageCms.ImageCmsProfile:
    """The built-in sRGB profile every conversion targets (built once)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=32)
def _transform(icc: bytes | None, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source = (
        ImageCms.ImageCmsProfile(BytesIO(icc))
        if icc is not None
        else ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    )
    return ImageCms.buildTransform(
        source, srgb_profile(), in_mode, out_mode, renderingIntent=_RENDERING_INTENT, flags=_FLAGS
    )


def _apply(im: Image.Image, icc: bytes | None, out_mode: str) -> Image.Image:
    transform = _transform(icc, im.mode, out_mode)
    result = ImageCms.applyTransform(im, transform)
    assert result is not None
    return result


def to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Pixels converted to sRGB. ``icc`` is the profile the pixels are in (None: device/sRGB).

    RGB(A) and L(A) with no profile are returned as they are. CMYK without a profile uses
    Pillow's device conversion (exact for the primaries, no ink model). A profile that
    cannot be used (broken, wrong colour space) falls back to the device conversion.
    """
    mode = im.mode
    if mode == "LAB":
        return _apply(im, None, "RGB")
    if icc is not None:
        try:
            if mode in ("RGB", "RGBA", "CMYK"):
                return _apply(im, icc, "RGBA" if mode == "RGBA" else "RGB")
            if mode in ("L", "LA"):
                # lcms transforms from a grey profile into RGB; keep the result grey.
                alpha = im.getchannel("A") if mode == "LA" else None
                rgb = _apply(im.convert("L"), icc, "RGB").convert("L")
                if alpha is not None:
                    rgb.putalpha(alpha)
                return rgb
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass
    if mode in ("RGB", "RGBA", "L", "LA"):
        return im
    return im.convert("RGBA" if "A" in im.getbands() else "RGB")

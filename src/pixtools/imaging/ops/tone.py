"""``grayscale``, ``blur``, ``sharpen`` and ``adjust``: pixel values only, geometry unchanged."""

from __future__ import annotations

from PIL import Image, ImageEnhance, ImageFilter

from pixtools.imaging.color import to_srgb
from pixtools.imaging.context import StepContext
from pixtools.jobspec.ops import Adjust, Blur, Grayscale, Sharpen

_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}


def grayscale(im: Image.Image, p: Grayscale, ctx: StepContext) -> Image.Image:
    """Luminance only (mode L, or LA keeping alpha), computed from sRGB values."""
    del p
    if im.mode in ("L", "LA"):
        return im
    if ctx.icc_profile is not None:
        # The luminance weights are for sRGB primaries; an L image carries no RGB profile.
        im = to_srgb(im, ctx.icc_profile)
        ctx.icc_profile = None
    return im.convert("LA" if im.mode == "RGBA" else "L")


def _filtered(im: Image.Image, image_filter: ImageFilter.Filter) -> Image.Image:
    # Filter in premultiplied alpha so transparent pixels' colours do not bleed in.
    premultiplied = _PREMULTIPLIED.get(im.mode)
    if premultiplied is None:
        return im.filter(image_filter)
    return im.convert(premultiplied).filter(image_filter).convert(im.mode)


def blur(im: Image.Image, p: Blur, ctx: StepContext) -> Image.Image:
    """Gaussian blur; ``sigma`` is the standard deviation in pixels."""
    del ctx
    return _filtered(im, ImageFilter.GaussianBlur(p.sigma))


def sharpen(im: Image.Image, p: Sharpen, ctx: StepContext) -> Image.Image:
    """Unsharp mask: ``amount`` 1 adds 100% of the detail at ``radius`` (alpha untouched)."""
    del ctx
    if p.amount == 0:
        return im
    unsharp = ImageFilter.UnsharpMask(radius=p.radius, percent=round(p.amount * 100), threshold=0)
    if "A" not in im.mode:
        return im.filter(unsharp)
    colour = im.convert(im.mode[:-1]).filter(unsharp)
    colour.putalpha(im.getchannel("A"))
    return colour


def adjust(im: Image.Image, p: Adjust, ctx: StepContext) -> Image.Image:
    """Brightness, contrast, saturation factors (1 = unchanged; unchanged ones cost nothing)."""
    del ctx
    if p.brightness != 1:
        im = ImageEnhance.Brightness(im).enhance(p.brightness)
    if p.contrast != 1:
        im = ImageEnhance.Contrast(im).enhance(p.contrast)
    if p.saturation != 1 and im.mode not in ("L", "LA"):
        im = ImageEnhance.Color(im).enhance(p.saturation)
    return im

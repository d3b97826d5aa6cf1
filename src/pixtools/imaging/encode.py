"""Encoding: prepare the pixels for the target format, then save with chosen settings.

Encoder settings are chosen on purpose (docs/imaging.md): JPEG q85 with optimised Huffman
tables and 4:2:0 chroma below q90; WebP q80, method 4; AVIF q60, speed 6; PNG zlib level 6;
TIFF Adobe-deflate. Nothing from the source's metadata reaches the output unless asked for:
EXIF (orientation reset to 1) and XMP only with ``keep_metadata``; the ICC profile per the
colour policy in ``color.py``.
"""

from __future__ import annotations

import re
from io import BytesIO
from typing import Any

from PIL import Image, ImageFile, PngImagePlugin

from pixtools.imaging.color import to_srgb
from pixtools.imaging.context import StepContext
from pixtools.imaging.decode import EXIF_ORIENTATION, avif_codec
from pixtools.imaging.errors import OperationError
from pixtools.imaging.formats import FORMATS
from pixtools.spec.ops import Convert

DEFAULT_QUALITY = {"jpeg": 85, "webp": 80, "avif": 60}
WEBP_METHOD = 4  # libwebp's balanced effort: 5-6 cost ~2x time for ~2-4% bytes
AVIF_SPEED = 6
PNG_COMPRESS_LEVEL = 6  # zlib's default: level 9 costs several times more for ~1-3%
FLATTEN_BACKGROUND = (255, 255, 255)

_XMP_ORIENTATION = re.compile(
    rb'\s*tiff:Orientation\s*=\s*"[^"]*"|<tiff:Orientation>[^<]*</tiff:Orientation>'
)


def flatten(im: Image.Image, background: tuple[int, int, int] = FLATTEN_BACKGROUND) -> Image.Image:
    """Composite an image with alpha onto an opaque background (RGB or L out)."""
    if im.mode == "RGBA":
        base = Image.new("RGB", im.size, background)
        base.paste(im, mask=im.getchannel("A"))
        return base
    if im.mode == "LA":
        grey = round(0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2])
        base = Image.new("L", im.size, grey)
        base.paste(im.getchannel("L"), mask=im.getchannel("A"))
        return base
    return im


def _opaque(im: Image.Image) -> bool:
    """True when an image with alpha has every pixel fully opaque."""
    if im.mode not in ("RGBA", "LA"):
        return True
    lo, _hi = im.getchannel("A").getextrema()
    return bool(lo == 255)


def prepare_for_format(im: Image.Image, fmt: str, ctx: StepContext) -> Image.Image:
    """Pixels the target format can store: sRGB where it has no ICC, alpha flattened or
    reduced to one transparent palette entry, a palette for GIF."""
    info = FORMATS[fmt]
    if ctx.icc_profile is not None and not info.has_icc:
        im = to_srgb(im, ctx.icc_profile)
        ctx.icc_profile = None
    if im.mode in ("RGBA", "LA") and (not info.has_alpha or _opaque(im)):
        im = flatten(im) if not info.has_alpha else im.convert(im.mode[:-1])
    if fmt == "gif":
        im = _to_gif_palette(im)
    return im


def _to_gif_palette(im: Image.Image) -> Image.Image:
    if im.mode in ("L", "P"):
        return im
    if im.mode == "LA":
        im = im.convert("RGBA")
    if im.mode != "RGBA":
        return im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    # GIF has 1-bit transparency: pixels under half opacity become the transparent entry.
    alpha = im.getchannel("A")
    mask = alpha.point(lambda a: 255 if a < 128 else 0)
    pal = im.convert("RGB").quantize(255, method=Image.Quantize.MEDIANCUT)
    if mask.getbbox() is not None:
        pal.paste(255, mask=mask)
        pal.info["transparency"] = 255
    return pal


def _exif_for_output(exif: bytes) -> Image.Exif | None:
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        parsed[EXIF_ORIENTATION] = 1
    except Exception:  # malformed EXIF is dropped rather than failing the output
        return None
    return parsed


def _xmp_for_output(xmp: bytes) -> bytes:
    return _XMP_ORIENTATION.sub(b"", xmp)


def encoder_options(fmt: str, params: Convert | None) -> dict[str, Any]:
    """Pillow ``save`` keyword arguments for a format and the output's ``convert`` step."""
    quality = params.quality if params is not None else None
    lossless = params.lossless if params is not None else False
    if fmt == "jpeg":
        q = quality or DEFAULT_QUALITY["jpeg"]
        return {
            "quality": q,
            "optimize": True,
            "progressive": bool(params and params.progressive),
            "subsampling": "4:4:4" if q >= 90 else "4:2:0",
        }
    if fmt == "webp":
        if lossless:
            return {"lossless": True, "quality": 80, "method": WEBP_METHOD, "exact": False}
        return {"quality": quality or DEFAULT_QUALITY["webp"], "method": WEBP_METHOD}
    if fmt == "avif":
        if lossless:
            return {"quality": 100, "subsampling": "4:4:4", "speed": AVIF_SPEED, "range": "full"}
        return {"quality": quality or DEFAULT_QUALITY["avif"], "speed": AVIF_SPEED}
    if fmt == "png":
        return {"compress_level": PNG_COMPRESS_LEVEL, "optimize": False}
    if fmt == "tiff":
        return {"compression": "tiff_adobe_deflate"}
    return {}


def _detached(im: Image.Image) -> Image.Image:
    """The pixels without the decoder's file object (whose tags TIFF would re-save)."""
    if isinstance(im, ImageFile.ImageFile):
        im = im._new(im.im)
    im.info = {k: v for k, v in im.info.items() if k == "transparency"}
    return im


def _metadata_options(fmt: str, ctx: StepContext) -> dict[str, Any]:
    """``save`` options that copy the source's EXIF (orientation 1) and XMP."""
    exif = _exif_for_output(ctx.exif) if ctx.exif else None
    xmp = _xmp_for_output(ctx.xmp) if ctx.xmp else None
    options: dict[str, Any] = {}
    if fmt == "tiff":
        # TIFF's EXIF is its own IFD: XMP is a tag in it (``tiffinfo`` would replace it).
        # libtiff cannot write the EXIF and GPS sub-IFDs, so Pillow's own (uncompressed)
        # writer does: complete metadata over size.
        if exif is not None:
            if xmp is not None:
                exif[700] = xmp
            options["exif"] = exif
            options["compression"] = None
        elif xmp is not None:
            options["tiffinfo"] = {700: xmp}
        return options
    if exif is not None and fmt in ("jpeg", "png", "webp", "avif"):
        options["exif"] = exif
    if xmp is not None:
        if fmt in ("jpeg", "webp", "avif"):
            options["xmp"] = xmp
        elif fmt == "png":
            pnginfo = PngImagePlugin.PngInfo()
            pnginfo.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
            options["pnginfo"] = pnginfo
    return options


def encode(im: Image.Image, fmt: str, params: Convert | None, ctx: StepContext) -> bytes:
    """Encode prepared pixels (see ``prepare_for_format``) to ``fmt``."""
    info = FORMATS[fmt]
    if fmt == "avif" and avif_codec() is None:
        raise OperationError("AVIF output is not supported by this build (no AVIF encoder)")
    im = _detached(im)
    options = encoder_options(fmt, params)
    if ctx.icc_profile is not None and info.has_icc:
        options["icc_profile"] = ctx.icc_profile
    if ctx.keep_metadata:
        options |= _metadata_options(fmt, ctx)
    out = BytesIO()
    try:
        im.save(out, format=info.pil_name, **options)
    except Exception as exc:  # an encoder refusing these pixels fails the same way every time
        raise OperationError(
            f"cannot encode {im.mode} {im.width}x{im.height} as {fmt}: {exc}"
        ) from None
    return out.getvalue()

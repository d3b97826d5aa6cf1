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

from PIL import ExifTags, Image, ImageFile, PngImagePlugin

from pixtools.imaging.color import to_srgb
from pixtools.imaging.context import StepContext
from pixtools.imaging.decode import EXIF_ORIENTATION, avif_codec
from pixtools.imaging.errors import OperationError
from pixtools.imaging.formats import FORMATS
from pixtools.jobspec.ops import Convert

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


# The first directory's tags that describe the picture. Everything else there describes the
# file it came from (size, strips, tiles, compression, colour model, sample layout): copied
# into a resized TIFF it declared the old size and read as truncated.
_DESCRIPTIVE_TAGS = frozenset(
    {
        0x010D,  # DocumentName
        0x010E,  # ImageDescription
        0x010F,  # Make
        0x0110,  # Model
        0x0112,  # Orientation (reset to 1)
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x011D,  # PageName
        0x0128,  # ResolutionUnit
        0x0131,  # Software
        0x0132,  # DateTime
        0x013B,  # Artist
        0x013C,  # HostComputer
        0x4746,  # Rating
        0x4749,  # RatingPercent
        0x8298,  # Copyright
        0x83BB,  # IPTC
        0x8769,  # the EXIF sub-directory
        0x8825,  # the GPS sub-directory
        0x9C9B,  # XPTitle
        0x9C9C,  # XPComment
        0x9C9D,  # XPAuthor
        0x9C9E,  # XPKeywords
        0x9C9F,  # XPSubject
    }
)
_EXIF_IFD = 0x8769
# In the EXIF sub-directory: the pixel size of the original, wrong for any resized output.
_SOURCE_SIZE_TAGS = (0xA002, 0xA003)
# JPEG keeps EXIF and XMP in one APP1 segment each: 65,533 bytes less their headers.
_JPEG_MAX_EXIF = 65_533 - 6
_JPEG_MAX_XMP = 65_533 - 29


def _tag_name(tag: int) -> str:
    name = ExifTags.TAGS.get(tag)
    return f"0x{tag:04X} ({name})" if name else f"0x{tag:04X}"


def _writable(exif: Image.Exif, tag: int) -> bool:
    single = Image.Exif()
    single[tag] = exif[tag]
    try:
        single.tobytes()
    except Exception:
        return False
    return True


def _entry_cost(value: Any) -> int:
    """About how many bytes an EXIF entry takes: 12 in its directory, plus its data."""
    if isinstance(value, bytes | str):
        return 12 + len(value)
    if isinstance(value, tuple):
        return 12 + 8 * len(value)
    return 12


def _shrink_exif(parsed: Image.Exif, size: int, limit: int) -> int:
    """Drop the largest entries (of the first directory and the EXIF and GPS ones) until
    the EXIF serialises within ``limit`` bytes; orientation stays. Returns how many."""
    directories: list[dict[int, Any]] = [parsed]  # type: ignore[list-item]
    directories += [parsed.get_ifd(t) for t in (_EXIF_IFD, 0x8825) if t in parsed]
    entries = sorted(
        (
            (_entry_cost(d[tag]), n, tag)
            for n, d in enumerate(directories)
            for tag in d
            if tag not in (_EXIF_IFD, 0x8825, EXIF_ORIENTATION)
        ),
        reverse=True,
    )
    excess, dropped = size - limit, 0
    for cost, n, tag in entries:
        del directories[n][tag]
        dropped += 1
        excess -= cost
        if excess <= 0:  # the estimate says it fits: measure (rarely more than once)
            excess = len(parsed.tobytes()) - limit
            if excess <= 0:
                break
    return dropped


def _exif_for_output(exif: bytes, warnings: list[str], limit: int | None) -> Image.Exif | None:
    """The source's descriptive EXIF, orientation 1, without what cannot be written back.

    Each tag the library cannot serialise (a resolution stored as text, a broken rational)
    is dropped and named in ``warnings``; so are the largest tags when the whole exceeds
    ``limit`` bytes (JPEG's segment size), until it fits.
    """
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        for tag in [t for t in parsed if t not in _DESCRIPTIVE_TAGS]:
            del parsed[tag]
        sub = parsed.get_ifd(_EXIF_IFD) if _EXIF_IFD in parsed else {}
        for tag in _SOURCE_SIZE_TAGS:
            sub.pop(tag, None)
        parsed[EXIF_ORIENTATION] = 1
    except Exception as exc:  # malformed EXIF is dropped rather than failing the output
        warnings.append(f"keep_metadata: the source's EXIF cannot be read, dropped ({exc})")
        return None
    for tag in list(parsed):
        if tag not in (_EXIF_IFD, 0x8825) and not _writable(parsed, tag):
            del parsed[tag]
            warnings.append(f"keep_metadata: EXIF tag {_tag_name(tag)} cannot be written, dropped")
    try:
        size = len(parsed.tobytes())
    except Exception as exc:
        warnings.append(f"keep_metadata: the source's EXIF cannot be written, dropped ({exc})")
        return None
    if limit is not None and size > limit:
        dropped = _shrink_exif(parsed, size, limit)
        warnings.append(
            f"keep_metadata: the EXIF ({size:,} bytes) exceeds the format's {limit:,}; "
            f"its {dropped} largest entries were dropped"
        )
        if len(parsed.tobytes()) > limit:
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
        return (
            {"lossless": True, "quality": 80, "method": WEBP_METHOD, "exact": False}
            if lossless
            else {"quality": quality or DEFAULT_QUALITY["webp"], "method": WEBP_METHOD}
        )
    if fmt == "avif":
        return (
            {"quality": 100, "subsampling": "4:4:4", "speed": AVIF_SPEED, "range": "full"}
            if lossless
            else {"quality": quality or DEFAULT_QUALITY["avif"], "speed": AVIF_SPEED}
        )
    if fmt == "png":
        return {"compress_level": PNG_COMPRESS_LEVEL, "optimize": False}
    if fmt == "tiff":
        return {"compression": "tiff_adobe_deflate"}
    return {}


def _detached(im: Image.Image) -> Image.Image:
    """The pixels without the decoder's file object (whose tags TIFF would re-save)."""
    if isinstance(im, ImageFile.ImageFile):
        im = im._new(im.im)
    # Only a palette's transparent index is pixel data; anything else in ``info`` (another
    # mode's key colour, the source's tags) must not reach the encoder.
    trns = im.info.get("transparency")
    im.info = {"transparency": trns} if im.mode == "P" and isinstance(trns, int) else {}
    return im


def _metadata_options(fmt: str, ctx: StepContext, warnings: list[str]) -> dict[str, Any]:
    """``save`` options that copy the source's EXIF (orientation 1) and XMP, less what the
    format cannot hold (noted in ``warnings``)."""
    exif_limit = _JPEG_MAX_EXIF if fmt == "jpeg" else None
    exif = _exif_for_output(ctx.exif, warnings, exif_limit) if ctx.exif else None
    xmp = _xmp_for_output(ctx.xmp) if ctx.xmp else None
    if xmp is not None and fmt == "jpeg" and len(xmp) > _JPEG_MAX_XMP:
        warnings.append(
            f"keep_metadata: the XMP ({len(xmp):,} bytes) exceeds JPEG's {_JPEG_MAX_XMP:,}, dropped"
        )
        xmp = None
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


_METADATA_OPTIONS = ("exif", "xmp", "pnginfo", "tiffinfo")


def _save(im: Image.Image, fmt: str, options: dict[str, Any]) -> bytes:
    out = BytesIO()
    im.save(out, format=FORMATS[fmt].pil_name, **options)
    return out.getvalue()


def encode(im: Image.Image, fmt: str, params: Convert | None, ctx: StepContext) -> bytes:
    """Encode prepared pixels (see ``prepare_for_format``) to ``fmt``."""
    info = FORMATS[fmt]
    if fmt == "avif" and avif_codec() is None:
        raise OperationError("AVIF output is not supported by this build (no AVIF encoder)")
    im = _detached(im)
    options = encoder_options(fmt, params)
    if ctx.icc_profile is not None and info.has_icc:
        options["icc_profile"] = ctx.icc_profile
    warnings: list[str] = []
    plain = dict(options)
    if ctx.keep_metadata:
        options |= _metadata_options(fmt, ctx, warnings)
    try:
        try:
            data = _save(im, fmt, options)
        except Exception as exc:
            if options == plain:
                raise
            # The metadata is what the encoder refused (the pixels alone are tried next):
            # the output is made without it rather than failed, and the job says so.
            data = _save(im, fmt, plain)
            kept = ", ".join(k for k in _METADATA_OPTIONS if k in options)
            warnings.append(
                f"keep_metadata: the {fmt} encoder refused the metadata ({kept}: "
                f"{exc}); the output has none"
            )
    except Exception as exc:  # an encoder refusing these pixels fails the same way every time
        raise OperationError(
            f"cannot encode {im.mode} {im.width}x{im.height} as {fmt}: {exc}"
        ) from None
    if warnings:
        ctx.result.setdefault("warnings", []).extend(warnings)
    return data

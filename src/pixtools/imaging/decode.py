"""Safe decoding: sniff, open with only the sniffed plugin, check the pixel count from the
header, shrink JPEGs in the DCT domain when asked, decode, auto-orient, normalise the mode.

``probe`` reads the header only. ``decode`` is the one place that decodes pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from io import BytesIO

from PIL import Image, ImageFile, features

from pixtools.imaging.color import icc_colour_space, to_srgb
from pixtools.imaging.errors import CorruptImage, ImageError, TooManyPixels, UnsupportedFormat
from pixtools.imaging.formats import FORMATS, sniff_format
from pixtools.imaging.limits import apply_decoder_limits, check_pixels

EXIF_ORIENTATION = 0x0112
# Orientation tag value -> the transposition that displays the image upright.
_ORIENT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the header says. ``width``/``height`` are after EXIF auto-orientation."""

    format: str
    content_type: str
    width: int
    height: int
    frames: int


@dataclass(slots=True)
class Decoded:
    """A decoded, upright source in a working mode (L, LA, RGB or RGBA) and its facts."""

    image: Image.Image
    format: str
    source_size: tuple[int, int]  # upright, before any draft shrink
    exif: bytes | None
    xmp: bytes | None
    icc_profile: bytes | None  # None when the pixels are sRGB (or were converted to it)


@cache
def avif_codec() -> str | None:
    """Register an AVIF codec: Pillow's own when built with it, else pillow-avif-plugin.

    Returns ``"pillow"``, ``"pillow-avif-plugin"`` or None. (Pillow registers its AVIF
    plugin even when its ``_avif`` module is missing, so the module is what is checked.)
    """
    if features.check_module("avif"):
        return "pillow"
    try:
        import pillow_avif  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return None
    return "pillow-avif-plugin"


def _corrupt(fmt: str, exc: BaseException) -> CorruptImage:
    detail = str(exc).strip() or type(exc).__name__
    return CorruptImage(f"corrupt or truncated {fmt.upper()} image: {detail}")


def open_source(
    data: bytes | bytearray, max_pixels: int | None
) -> tuple[ImageFile.ImageFile, str, int]:
    """Open lazily (header only); return the image, our format name and its frame count.

    With ``max_pixels`` the declared pixels (all frames) are checked and Pillow's own limit
    is set; without it (metadata only, no decode follows) neither is touched.
    """
    if max_pixels is not None:
        apply_decoder_limits(max_pixels)
    fmt = sniff_format(data[:64])
    if fmt is None:
        raise UnsupportedFormat(
            "unsupported image format: expected JPEG, PNG, WebP, AVIF, GIF, TIFF or BMP"
        )
    if fmt == "avif" and avif_codec() is None:
        raise UnsupportedFormat("AVIF is not supported by this build (no AVIF decoder)")
    try:
        im = Image.open(BytesIO(data), formats=[FORMATS[fmt].pil_name])
        width, height = im.size
        if width < 1 or height < 1:
            raise CorruptImage(f"{fmt.upper()} header declares an empty image")
        if max_pixels is not None:
            check_pixels(width, height, 1, max_pixels)
        frames = int(getattr(im, "n_frames", 1) or 1)
        if max_pixels is not None:
            check_pixels(width, height, frames, max_pixels)
        if frames > 1:
            im.seek(0)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(f"image exceeds the pixel limit: {exc}") from None
    except MemoryError:
        raise TooManyPixels("image header declares more data than can be held") from None
    except Exception as exc:
        raise _corrupt(fmt, exc) from None
    return im, fmt, frames


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF: display the pixels as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def probe(data: bytes | bytearray, *, max_pixels: int) -> SourceInfo:
    """Format, upright dimensions and frame count from the header; never decodes pixels.

    Raises ``UnsupportedFormat`` (415), ``TooManyPixels`` or ``CorruptImage`` (422).
    """
    im, fmt, frames = open_source(data, max_pixels)
    with im:
        width, height = im.size
        if _orientation(im) in (5, 6, 7, 8):
            width, height = height, width
        return SourceInfo(fmt, FORMATS[fmt].content_type, width, height, frames)


def _exif_bytes(im: Image.Image) -> bytes | None:
    raw = im.info.get("exif")
    if isinstance(raw, bytes) and raw:
        return raw
    try:
        exif = im.getexif()
        return exif.tobytes() if len(exif) else None
    except Exception:
        return None


def _xmp_bytes(im: Image.Image) -> bytes | None:
    raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return raw if isinstance(raw, bytes) and raw else None


def _normalise_mode(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Bring any decoded mode to L, LA, RGB or RGBA; convert CMYK/Lab to sRGB."""
    mode = im.mode
    space = icc_colour_space(icc)
    if mode in ("RGB", "RGBA"):
        return im, icc if space == "RGB" else None
    if mode in ("L", "LA"):
        return im, icc if space == "GRAY" else None
    if mode == "CMYK":
        return to_srgb(im, icc if space == "CMYK" else None), None
    if mode == "LAB":
        return to_srgb(im, None), None
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or im.has_transparency_data
        return im.convert("RGBA" if has_alpha else "RGB"), icc if space == "RGB" else None
    if mode == "1":
        return im.convert("L"), None
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale: scale 0..65535 to 0..255 (convert() alone would clip at 255).
        wide = im if mode == "I" else im.convert("I")
        return wide.point(lambda v: v * (1 / 257)).convert("L"), icc if space == "GRAY" else None
    if mode in ("RGBa", "La"):
        return im.convert(mode[:-1] + "A"), icc
    if mode in ("RGBX", "YCbCr", "HSV"):
        return im.convert("RGB"), icc if space == "RGB" else None
    if mode == "F":
        return im.convert("L"), None
    return im.convert("RGBA" if "A" in im.getbands() else "RGB"), None


DraftPlanner = Callable[[tuple[int, int]], tuple[int, int] | None]


def decode(
    data: bytes | bytearray, *, max_pixels: int, plan_draft: DraftPlanner | None = None
) -> Decoded:
    """Decode the first frame, upright, in a working mode.

    ``plan_draft`` is given the upright source size and may return a smaller upright size:
    a JPEG then decodes at 1/2, 1/4 or 1/8 scale in the DCT domain, staying at least that
    large. The caller plans one only when its pipeline starts by shrinking.
    """
    im, fmt, _frames = open_source(data, max_pixels)
    try:
        upright = _orientation(im)
        width, height = im.size
        source_size = (height, width) if upright in (5, 6, 7, 8) else (width, height)
        want = plan_draft(source_size) if plan_draft is not None and fmt == "jpeg" else None
        if want is not None:
            im.draft(im.mode, want[::-1] if upright in (5, 6, 7, 8) else want)
        im.load()
        exif, xmp = _exif_bytes(im), _xmp_bytes(im)
        icc = im.info.get("icc_profile") or None
        image: Image.Image = im
        transpose = _ORIENT.get(upright)
        if transpose is not None:
            image = image.transpose(transpose)
        image, icc = _normalise_mode(image, icc if isinstance(icc, bytes) else None)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(f"image exceeds the pixel limit of {max_pixels:,}: {exc}") from None
    except MemoryError:
        raise TooManyPixels("image needs more memory to decode than can be held") from None
    except Exception as exc:
        raise _corrupt(fmt, exc) from None
    return Decoded(image, fmt, source_size, exif, xmp, icc)

"""Safe decoding: sniff, open with only the sniffed plugin, check the pixel count from the
header, shrink JPEGs in the DCT domain when asked, decode, auto-orient, normalise the mode.

``probe`` reads the header only. ``decode`` is the one place that decodes pixels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from io import BytesIO

from PIL import Image, ImageChops, ImageFile, UnidentifiedImageError, features

from pixtools.imaging.color import icc_colour_space, to_srgb
from pixtools.imaging.errors import CorruptImage, ImageError, TooManyPixels, UnsupportedFormat
from pixtools.imaging.formats import FORMATS, sniff_format
from pixtools.imaging.limits import apply_decoder_limits, check_pixels
from pixtools.imaging.structure import check_structure, gif_frames

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


# Python object reprs (``<_io.BytesIO object at 0x7fa9...>``) say nothing to a client and
# tell an attacker about the process: they never reach a message.
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _corrupt(fmt: str, exc: BaseException) -> CorruptImage:
    if isinstance(exc, UnidentifiedImageError):
        return CorruptImage(f"corrupt or truncated {fmt.upper()} image: its header cannot be read")
    detail = _OBJECT_REPR.sub("the upload", str(exc)).strip() or type(exc).__name__
    return CorruptImage(f"corrupt or truncated {fmt.upper()} image: {detail}")


def _bomb(exc: BaseException, max_pixels: int | None) -> TooManyPixels:
    """Pillow's bomb error in our words: its text names twice its threshold as the limit."""
    found = _BOMB_PIXELS.search(str(exc))
    declared = f" ({int(found[1]):,} pixels)" if found else ""
    limit = f" of {max_pixels:,} pixels" if max_pixels is not None else ""
    return TooManyPixels(f"the image{declared} exceeds the pixel limit{limit}")


def open_source(
    data: bytes | bytearray, max_pixels: int | None, *, count_frames: bool = True
) -> tuple[ImageFile.ImageFile, str, int]:
    """Open lazily (header only); check the file is whole; return the image, our format
    name and its frame count (1 when ``count_frames`` is off: a decode needs frame 0 only).

    With ``max_pixels`` the declared pixels (all frames) are checked and Pillow's own limit
    is set; without it (metadata only, no decode follows) neither is touched. A file cut
    short or inconsistent in its container is ``CorruptImage`` (``structure.py``).
    """
    if max_pixels is not None:
        apply_decoder_limits(max_pixels)
    fmt = _supported_format(data)
    with _as_image_errors(fmt, max_pixels, "image header declares more data than can be held"):
        im = Image.open(BytesIO(data), formats=[FORMATS[fmt].pil_name])
        width, height = im.size
        if width < 1 or height < 1:
            raise CorruptImage(f"{fmt.upper()} header declares an empty image")
        if max_pixels is not None:
            check_pixels(width, height, 1, max_pixels)
        check_structure(fmt, data, im)
        frames = _frame_count(fmt, data, im, max_pixels, count_frames=count_frames)
        if max_pixels is not None:
            check_pixels(width, height, frames, max_pixels)
        if frames > 1 and fmt != "gif":
            im.seek(0)
    return im, fmt, frames


def _supported_format(data: bytes | bytearray) -> str:
    """The sniffed format of ``data``, when this build can decode it (else 415)."""
    fmt = sniff_format(data[:64])
    if fmt is None:
        raise UnsupportedFormat(
            "unsupported image format: expected JPEG, PNG, WebP, AVIF, GIF, TIFF or BMP"
        )
    if fmt == "avif" and avif_codec() is None:
        raise UnsupportedFormat("AVIF is not supported by this build (no AVIF decoder)")
    return fmt


def _frame_count(
    fmt: str,
    data: bytes | bytearray,
    im: Image.Image,
    max_pixels: int | None,
    *,
    count_frames: bool,
) -> int:
    """The frames of a GIF (counted up to what the pixel limit allows), of another format
    when ``count_frames`` is on, else 1."""
    if fmt == "gif" and not count_frames:
        # A render reads frame 0 only: its blocks are checked whole, the rest is not walked
        # again (the submit counted them once; walking 700,000 frames per output added up).
        gif_frames(data, 0)
        return 1
    if fmt == "gif":
        width, height = im.size
        # Walked once, bounded: Pillow's count seeks frame by frame (11 s for 700,000).
        bound = max_pixels // (width * height) if max_pixels is not None else 1 << 62
        frames = gif_frames(data, bound)
        if frames > bound:
            raise TooManyPixels(
                f"image declares over {bound * width * height:,} pixels ({width}x{height} "
                f"in {frames} frames or more); the limit is {max_pixels:,}"
            )
        return frames
    return int(getattr(im, "n_frames", 1) or 1) if count_frames else 1


@contextmanager
def _as_image_errors(fmt: str, max_pixels: int | None, out_of_memory: str) -> Iterator[None]:
    """Turn whatever the image library raises into ``TooManyPixels`` or ``CorruptImage``."""
    try:
        yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(exc, max_pixels) from None
    except MemoryError:
        raise TooManyPixels(out_of_memory) from None
    except Exception as exc:
        raise _corrupt(fmt, exc) from None


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF: display the pixels as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


@cache
def library_uprights(fmt: str) -> bool:
    """Does the image library itself apply the orientation tag of ``fmt`` files on open?

    Pillow 13 uprights TIFFs as it opens them (the size it reports is already upright, and
    loading turns the pixels and drops the tag); pillow-simd 12.1 and every earlier Pillow
    leave that to the caller, and no version does it for JPEG, PNG, WebP or AVIF so far.
    Rather than trust a version number, this asks the library: a 2x1 image saved with
    orientation 6 (a quarter turn) opens as 1x2 exactly when the library turns it.
    """
    if fmt == "avif" and avif_codec() is None:
        return False
    sample = Image.new("L", (2, 1))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    buf = BytesIO()
    try:
        sample.save(buf, format=FORMATS[fmt].pil_name, exif=exif)
        with Image.open(BytesIO(buf.getvalue()), formats=[FORMATS[fmt].pil_name]) as back:
            return back.size == (1, 2)
    except Exception:  # a format the library cannot write here carries no tag it turns
        return False


def pending_orientation(im: Image.Image, fmt: str) -> int:
    """The EXIF orientation still to apply to ``im`` (1 when the library applies it)."""
    return 1 if library_uprights(fmt) else _orientation(im)


def probe(data: bytes | bytearray, *, max_pixels: int) -> SourceInfo:
    """Format, upright dimensions and frame count from the header; never decodes pixels.

    Raises ``UnsupportedFormat`` (415), ``TooManyPixels`` or ``CorruptImage`` (422).
    """
    im, fmt, frames = open_source(data, max_pixels)
    with im:
        width, height = im.size
        if pending_orientation(im, fmt) in (5, 6, 7, 8):
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
    if mode in ("RGB", "L") and im.info.get("transparency") is not None:
        # A transparent key colour (PNG tRNS on RGB or grey): pixels of that colour are
        # transparent. As alpha, every output format sees it (GIF, WebP and AVIF did not).
        keyed = _key_to_alpha(im)
        if keyed is not None:
            return keyed, icc if space == ("RGB" if mode == "RGB" else "GRAY") else None
    if mode in ("RGB", "RGBA"):
        return im, icc if space == "RGB" else None
    if mode in ("L", "LA"):
        return im, icc if space == "GRAY" else None
    if mode in ("CMYK", "LAB"):
        return to_srgb(im, icc if mode == "CMYK" and space == "CMYK" else None), None
    return _convert_other_mode(im, icc, space)


def _convert_other_mode(
    im: Image.Image, icc: bytes | None, space: str | None
) -> tuple[Image.Image, bytes | None]:
    """Palette, 1-bit, 16/32-bit integer, float, premultiplied and other modes to a working
    mode; the profile is kept only where it still describes the pixels."""
    mode = im.mode
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or im.has_transparency_data
        return im.convert("RGBA" if has_alpha else "RGB"), icc if space == "RGB" else None
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale: scale 0..65535 to 0..255 (convert() alone would clip at 255).
        wide = im if mode == "I" else im.convert("I")
        return wide.point(lambda v: v * (1 / 257)).convert("L"), icc if space == "GRAY" else None
    if mode in ("RGBa", "La"):
        return im.convert(mode[:-1] + "A"), icc
    if mode in ("RGBX", "YCbCr", "HSV"):
        return im.convert("RGB"), icc if space == "RGB" else None
    if mode in ("1", "F"):
        return im.convert("L"), None
    return im.convert("RGBA" if "A" in im.getbands() else "RGB"), None


def _key_to_alpha(im: Image.Image) -> Image.Image | None:
    """``im`` (RGB or L) with its transparent key colour as an alpha channel, or None when
    the key is unusable (then the pixels are taken as opaque)."""
    key = im.info.get("transparency")
    bands = 3 if im.mode == "RGB" else 1
    if isinstance(key, int) and bands == 1:
        key = (key,)
    if not (isinstance(key, tuple) and len(key) == bands and all(isinstance(v, int) for v in key)):
        return None
    # Compare every band with the key: the pixel is transparent where all of them match.
    bands_and_keys = zip(im.split(), key, strict=True)
    masks = [band.point(lambda v, k=k: 0 if v == k else 255) for band, k in bands_and_keys]
    alpha = masks[0]
    for mask in masks[1:]:
        alpha = ImageChops.lighter(alpha, mask)
    out = im.copy()
    out.info.pop("transparency", None)
    out.putalpha(alpha)
    return out


DraftPlanner = Callable[[tuple[int, int]], tuple[int, int] | None]


def decode(
    data: bytes | bytearray, *, max_pixels: int, plan_draft: DraftPlanner | None = None
) -> Decoded:
    """Decode the first frame, upright, in a working mode.

    ``plan_draft`` is given the upright source size and may return a smaller upright size:
    a JPEG then decodes at 1/2, 1/4 or 1/8 scale in the DCT domain, staying at least that
    large. The caller plans one only when its pipeline starts by shrinking.
    """
    im, fmt, _frames = open_source(data, max_pixels, count_frames=False)
    with _as_image_errors(fmt, max_pixels, "image needs more memory to decode than can be held"):
        if fmt != "jpeg":
            # Pixels first: reading a PNG's EXIF loads the image, and a decode error raised
            # there (and swallowed as "malformed EXIF") would leave a half-decoded image that
            # a second load() returns as if whole. Only a JPEG's draft must precede its load.
            im.load()
        upright = pending_orientation(im, fmt)
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
    return Decoded(image, fmt, source_size, exif, xmp, icc)

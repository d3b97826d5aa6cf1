"""``extract_metadata``: the source's EXIF, ICC description and format facts as JSON-safe data.

EXIF values become JSON types: rationals are numbers, dates ISO 8601 (with the EXIF offset
when the file has one), GPS positions decimal degrees; binary blobs (MakerNote, thumbnails)
and structural TIFF tags are left out. Reads headers only; never decodes pixels.
"""

from __future__ import annotations

import math
from datetime import datetime
from io import BytesIO
from typing import Any

from PIL import ExifTags, Image, ImageCms, TiffImagePlugin

from pixtools.imaging.decode import EXIF_ORIENTATION, library_uprights, open_source
from pixtools.imaging.formats import FORMATS

_MAX_TEXT = 1024
_MAX_SEQUENCE = 32
# Pointers, structural TIFF tags and binary blobs: not facts a client wants as JSON.
_SKIP_TAGS = frozenset(
    {
        0x8769,  # ExifOffset
        0x8825,  # GPSInfo
        0xA005,  # InteropOffset
        0x927C,  # MakerNote
        0xC4A5,  # PrintImageMatching
        0x0111,  # StripOffsets
        0x0117,  # StripByteCounts
        0x0144,  # TileOffsets
        0x0145,  # TileByteCounts
        0x0201,  # JpegIFOffset
        0x0202,  # JpegIFByteCount
        0x02BC,  # XMLPacket (XMP)
        0x8773,  # InterColorProfile
        0x83BB,  # IPTC
        0x8649,  # ImageResources (Photoshop)
        0x0140,  # ColorMap
        0x9101,  # ComponentsConfiguration
    }
)
_DATE_TAGS = {0x0132: 0x9010, 0x9003: 0x9011, 0x9004: 0x9012}  # date tag -> its offset tag
_SUBSEC_TAGS = {0x0132: 0x9290, 0x9003: 0x9291, 0x9004: 0x9292}
_VERSION_TAGS = frozenset({0x9000, 0xA000, 0x0002})  # ExifVersion, FlashpixVersion, Interop
_USER_COMMENT = 0x9286


def _number(value: float) -> float | int | None:
    if isinstance(value, int):
        return value
    return round(value, 8) if math.isfinite(value) else None


def _json_value(value: Any) -> Any:
    """A JSON-safe form of an EXIF value, or None to leave it out."""
    if isinstance(value, TiffImagePlugin.IFDRational):
        return None if value.denominator == 0 else _number(float(value))
    if isinstance(value, int | float):  # bool too: ``_number`` returns an int as it is
        return _number(value)
    if isinstance(value, str):
        text = value.replace("\x00", "").strip()
        return text[:_MAX_TEXT] if text else None
    if isinstance(value, tuple | list):
        if not value or len(value) > _MAX_SEQUENCE:
            return None
        items = [_json_value(v) for v in value]
        return None if any(v is None for v in items) else items
    return None  # bytes and anything else: not dumped


def _iso_date(text: Any, subsec: Any, offset: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat()
    if isinstance(subsec, str) and subsec.strip("\x00 ").isdigit():
        iso += "." + subsec.strip("\x00 ")
    if isinstance(offset, str) and len(offset.strip("\x00 ")) == 6:
        iso += offset.strip("\x00 ")
    return iso


def _decode_bytes_tag(tag: int, value: bytes) -> str | None:
    if tag in _VERSION_TAGS:
        return value.decode("ascii", "ignore").strip("\x00 ") or None
    if tag == _USER_COMMENT and len(value) > 8:
        charset, text = value[:8].rstrip(b"\x00 "), value[8:]
        codec = {b"ASCII": "ascii", b"UNICODE": "utf-16", b"": "latin-1"}.get(charset)
        if codec is not None:
            decoded = text.decode(codec, "ignore").replace("\x00", "").strip()
            return decoded[:_MAX_TEXT] or None
    return None


def _named(ifd: dict[int, Any], names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, value in ifd.items():
        name = names.get(tag)
        if name is None or tag in _SKIP_TAGS or tag in _DATE_TAGS:
            continue
        converted = (
            _decode_bytes_tag(tag, value) if isinstance(value, bytes) else _json_value(value)
        )
        if converted is not None:
            out[name] = converted
    return out


def _dms(value: Any, ref: Any, negative: str) -> float | None:
    try:
        degrees, minutes, seconds = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(decimal):
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if isinstance(ref, str) and ref.strip("\x00 ").upper() == negative:
        decimal = -decimal
    return round(decimal, 7)


def _gps(gps: dict[int, Any]) -> dict[str, Any]:
    out = _named(gps, ExifTags.GPSTAGS)
    lat = _dms(gps.get(2), gps.get(1), "S")
    lon = _dms(gps.get(4), gps.get(3), "W")
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        out["latitude"], out["longitude"] = lat, lon
    altitude = _json_value(gps.get(6))
    if isinstance(altitude, int | float):
        below = gps.get(5) in (1, b"\x01")
        out["altitude"] = -altitude if below else altitude
    stamp, time = gps.get(29), gps.get(7)
    if isinstance(stamp, str) and isinstance(time, tuple) and len(time) == 3:
        try:
            h, m, s = (float(v) for v in time)
            moment = datetime.strptime(stamp.strip("\x00 "), "%Y:%m:%d").replace(
                hour=int(h), minute=int(m), second=int(s)
            )
            out["timestamp"] = moment.isoformat() + "Z"
        except (ValueError, ZeroDivisionError, TypeError):
            pass
    return out


def _exif(im: Image.Image) -> dict[str, Any]:
    try:
        exif = im.getexif()
        if not len(exif):
            return {}
        base = dict(exif)
        sub = dict(exif.get_ifd(ExifTags.IFD.Exif))
        gps = dict(exif.get_ifd(ExifTags.IFD.GPSInfo))
    except Exception:  # malformed EXIF: report none rather than fail
        return {}
    merged = {**base, **sub}
    out = _named(merged, ExifTags.TAGS)
    for date_tag, offset_tag in _DATE_TAGS.items():
        iso = _iso_date(
            merged.get(date_tag), merged.get(_SUBSEC_TAGS[date_tag]), merged.get(offset_tag)
        )
        if iso is not None:
            out[ExifTags.TAGS[date_tag]] = iso
    if gps:
        gps_out = _gps(gps)
        if gps_out:
            out["GPS"] = gps_out
    return out


def icc_description(icc: bytes | None) -> str | None:
    """The profile's description (e.g. ``sRGB IEC61966-2.1``), or None."""
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(BytesIO(icc))
        text = ImageCms.getProfileDescription(profile).replace("\x00", "").strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    return text[:_MAX_TEXT] or None


_BIT_DEPTH = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}


def extract_metadata(
    data: bytes | bytearray, *, max_pixels: int | None = None, frames: int | None = None
) -> dict[str, Any]:
    """EXIF, ICC description and format facts of a source, as JSON-safe values.

    ``frames``, when the caller has probed the source already, is its frame count: the
    frames are then not counted again (a GIF's are walked once per submission).

    Raises ``UnsupportedFormat``/``CorruptImage`` (and ``TooManyPixels`` when ``max_pixels``
    is given) like ``probe``; malformed EXIF or ICC data is left out, not an error.
    """
    im, fmt, counted = open_source(data, max_pixels, count_frames=frames is None)
    frames = counted if frames is None else frames
    with im:
        width, height = im.size
        orientation = 1
        try:
            value = im.getexif().get(EXIF_ORIENTATION, 1)
            orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
        except Exception:
            orientation = 1
        # The size the library reports is upright already where it applies the tag itself.
        if orientation in (5, 6, 7, 8) and not library_uprights(fmt):
            width, height = height, width
        icc = im.info.get("icc_profile")
        facts: dict[str, Any] = {
            "format": fmt,
            "content_type": FORMATS[fmt].content_type,
            "width": width,
            "height": height,
            "orientation": orientation,
            "frames": frames,
            "animated": frames > 1,
            "mode": im.mode,
            "bit_depth": _BIT_DEPTH.get(im.mode, 8),
            "has_alpha": "A" in im.getbands() or "transparency" in im.info,
            "icc_profile": icc_description(icc if isinstance(icc, bytes) else None),
            "has_xmp": bool(im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")),
        }
        if fmt == "jpeg":
            facts["progressive"] = bool(im.info.get("progressive") or im.info.get("progression"))
        dpi = im.info.get("dpi")
        if isinstance(dpi, tuple) and len(dpi) == 2:
            facts["dpi"] = _json_value(tuple(float(v) for v in dpi))
        facts["exif"] = _exif(im)
    return facts

"""Source and output formats: byte signatures, content types, file extensions.

The format of a source is sniffed from its first bytes, never taken from a file name or a
client's content type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FormatInfo:
    """One format we read (and write): our name, Pillow's name, MIME type, extension."""

    name: str
    pil_name: str
    content_type: str
    extension: str
    has_alpha: bool  # can the encoder store an alpha channel
    has_icc: bool  # can the file carry an ICC profile


FORMATS: dict[str, FormatInfo] = {
    f.name: f
    for f in (
        FormatInfo("jpeg", "JPEG", "image/jpeg", "jpg", has_alpha=False, has_icc=True),
        FormatInfo("png", "PNG", "image/png", "png", has_alpha=True, has_icc=True),
        FormatInfo("webp", "WEBP", "image/webp", "webp", has_alpha=True, has_icc=True),
        FormatInfo("avif", "AVIF", "image/avif", "avif", has_alpha=True, has_icc=True),
        FormatInfo("gif", "GIF", "image/gif", "gif", has_alpha=True, has_icc=False),
        FormatInfo("tiff", "TIFF", "image/tiff", "tiff", has_alpha=True, has_icc=True),
        FormatInfo("bmp", "BMP", "image/bmp", "bmp", has_alpha=False, has_icc=False),
    )
}

# ISO-BMFF brands that mark an AVIF still image or sequence; HEIC and friends are not ours.
_AVIF_BRANDS = (b"avif", b"avis")
_HEIF_GENERIC_BRANDS = (b"mif1", b"msf1", b"miaf")
# DIB header sizes of the BMP variants (OS/2 1.x, Windows 3.x .. 5, OS/2 2.x).
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def _is_avif(head: bytes | bytearray) -> bool:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    major = head[8:12]
    if major in _AVIF_BRANDS:
        return True
    if major not in _HEIF_GENERIC_BRANDS:
        return False
    box_end = min(int.from_bytes(head[0:4], "big"), len(head))
    compatible = [head[i : i + 4] for i in range(16, box_end - 3, 4)]
    return any(brand in _AVIF_BRANDS for brand in compatible)


def _is_webp(head: bytes | bytearray) -> bool:
    return len(head) >= 12 and head[0:4] == b"RIFF" and head[8:12] == b"WEBP"


def _is_bmp(head: bytes | bytearray) -> bool:
    return (
        len(head) >= 18
        and head[0:2] == b"BM"
        and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES
    )


# The formats a fixed prefix of the file identifies: that prefix and the format.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
)


def sniff_format(head: bytes | bytearray) -> str | None:
    """Our format name (``"jpeg"``...) from the first bytes (32 are enough), or None."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if _is_webp(head):
        return "webp"
    if _is_bmp(head):
        return "bmp"
    if _is_avif(head):
        return "avif"
    return None

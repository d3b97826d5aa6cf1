"""Structural checks of an upload, without decoding a pixel: is the file whole?

A truncated or cut-and-patched file decodes "successfully" more often than not (libjpeg fills
what is missing with grey, Pillow's TIFF and BMP readers stop early), so the API would accept
it and the worker would render garbage or fail later. Each format has a cheap way to tell:
its container's lengths and its end marker. ``check_structure`` walks the container (chunks,
boxes, blocks, segments; never the compressed pixel data) and raises ``CorruptImage`` naming
what is missing. For GIF it also counts the frames on the way, bounded by ``max_frames``:
Pillow counts them by seeking through each, which a 700,000-frame GIF turns into seconds.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from PIL import Image

from pixtools.imaging.errors import CorruptImage

# The smallest entropy-coded data a Huffman-coded JPEG can have: each 8x8 block of the first
# component needs at least a one-bit DC code (baseline and progressive alike). A header
# declaring 7000x7000 over 634 bytes is a cut file, whatever markers follow it.
_MIN_BITS_PER_BLOCK = 1
# SOF markers of Huffman-coded JPEGs (arithmetic coding, SOF9..SOF15, can go below a bit).
_HUFFMAN_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})
_MAX_PNG_CHUNKS = 10_000
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # length 0, type, CRC
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: markers without a length


def _corrupt(fmt: str, what: str) -> CorruptImage:
    return CorruptImage(f"corrupt or truncated {fmt.upper()} image: {what}")


def _jpeg(data: bytes | bytearray) -> None:
    """Segments from SOI to the first SOS lie inside the file; an EOI follows the scan data;
    the scan data is not shorter than the declared size needs."""
    pos, sof = _jpeg_headers(data)
    # Scan data: a real marker inside it is FF followed by neither 00 (a stuffed byte) nor
    # D0..D7 (restart). The image must end with EOI; bytes after it (padding, camera
    # trailers, MPF's further images) are tolerated.
    eoi = data.rfind(b"\xff\xd9", pos)
    if eoi < 0:
        raise _corrupt("jpeg", "no end-of-image marker (the file is cut short)")
    if sof is not None and sof[0] in _HUFFMAN_SOF:
        _marker, width, height = sof
        blocks = -(-width // 8) * -(-height // 8)
        need = blocks * _MIN_BITS_PER_BLOCK // 8
        if eoi - pos < need:
            raise _corrupt(
                "jpeg",
                f"{eoi - pos:,} bytes of image data cannot hold the declared "
                f"{width}x{height} pixels (the file is cut short)",
            )


def _jpeg_headers(data: bytes | bytearray) -> tuple[int, tuple[int, int, int] | None]:
    """Walk the segments from SOI through the first SOS: where the scan data starts, and the
    last frame header's marker, width and height (None without one)."""
    pos, end = 2, len(data)
    sof: tuple[int, int, int] | None = None
    while True:
        if pos < end and data[pos] != 0xFF:
            # Stray bytes between segments: libjpeg skips to the next marker, so do we.
            pos = data.find(b"\xff", pos)
            if pos < 0:
                raise _corrupt("jpeg", "the file ends inside its headers")
        while pos + 1 < end and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 4 > end:
            raise _corrupt("jpeg", "the file ends inside its headers")
        marker = data[pos + 1]
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:
            raise _corrupt("jpeg", "no image data before the end marker")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > end:
            raise _corrupt("jpeg", f"a segment (marker 0x{marker:02X}) runs past the end")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and length >= 8:
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            sof = (marker, width, height)
        pos += 2 + length
        if marker == 0xDA:
            return pos, sof


def _png(data: bytes | bytearray) -> None:
    """Chunks from IHDR to IEND, each inside the file."""
    pos, end = 8, len(data)
    first = True
    chunks = 0
    while pos + 8 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        if first and kind != b"IHDR":
            raise _corrupt("png", "the first chunk is not IHDR")
        first = False
        if pos + 12 + length > end:
            raise _corrupt("png", f"the {kind.decode('latin-1')!r} chunk runs past the end")
        if kind == b"IEND":
            return
        pos += 12 + length
        chunks += 1
        if chunks > _MAX_PNG_CHUNKS:
            # A file of millions of tiny chunks would make the walk the cost: past this many,
            # only the end is checked (an IEND chunk with nothing missing from it).
            if _PNG_IEND in data[-64:]:
                return
            break
    raise _corrupt("png", "no IEND chunk (the file is cut short)")


def _skip_sub_blocks(data: bytes | bytearray, pos: int) -> int:
    end = len(data)
    while pos < end:
        size = data[pos]
        if size == 0:
            return pos + 1
        pos += size + 1
    raise _corrupt("gif", "the file ends inside a data block (it is cut short)")


def gif_frames(data: bytes | bytearray, max_frames: int) -> int:
    """Walk a GIF's blocks to its trailer and count the image frames.

    Raises ``CorruptImage`` when a block runs past the end or the trailer is missing. The
    walk stops at ``max_frames + 1`` frames: the caller refuses the file then, and a file
    with 700,000 frames costs no more than one over the limit.
    """
    end = len(data)
    if end < 13:
        raise _corrupt("gif", "the file ends inside its header")
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while pos < end:
        kind = data[pos]
        if kind == 0x3B:  # trailer
            if frames == 0:
                raise _corrupt("gif", "no image in the file")
            return frames
        if kind == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif kind == 0x2C:  # image descriptor, local colour table, LZW code size, sub-blocks
            if pos + 10 > end:
                break
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)
            frames += 1
            if frames > max_frames:
                return frames  # enough to refuse: the rest is not walked
        elif frames:
            # Bytes that are no block after a whole frame (a second file appended, junk):
            # decoders stop there, and so does the count.
            return frames
        else:
            raise _corrupt("gif", f"unknown block 0x{kind:02X} at byte {pos}")
    raise _corrupt("gif", "no trailer (the file is cut short)")


def _webp(data: bytes | bytearray) -> None:
    """The RIFF size matches the file, and its chunks lie inside it."""
    declared = int.from_bytes(data[4:8], "little") + 8
    if declared > len(data):
        raise _corrupt(
            "webp", f"the RIFF header declares {declared:,} bytes, the file has {len(data):,}"
        )
    pos = 12
    while pos + 8 <= declared:
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
        if pos > declared + 1:  # the last chunk's pad byte may be missing
            raise _corrupt("webp", "a chunk runs past the end")
    if pos == 12:
        raise _corrupt("webp", "no image data")


def _tiff(im: Image.Image, data: bytes | bytearray) -> None:
    """The first directory's strips or tiles lie inside the file."""
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return
    offsets = tags.get(273) or tags.get(324)
    counts = tags.get(279) or tags.get(325)
    if offsets is None:
        raise _corrupt("tiff", "the directory names no strips or tiles")
    offsets = offsets if isinstance(offsets, tuple) else (offsets,)
    counts = counts if isinstance(counts, tuple) else (counts,) if counts is not None else ()
    if counts and len(counts) == len(offsets):
        last = max(o + c for o, c in zip(offsets, counts, strict=True))
    else:  # no byte counts: the strips must at least start inside the file
        last = max(offsets) + 1
    if last > len(data):
        raise _corrupt("tiff", f"the image data ends at byte {last:,}, the file has {len(data):,}")


def _bmp(data: bytes | bytearray) -> None:
    """The pixel data the header declares fits in the file."""
    offset = int.from_bytes(data[10:14], "little")
    dib = int.from_bytes(data[14:18], "little")
    if dib == 12:
        width, height = struct.unpack_from("<HH", data, 18)
        bpp = int.from_bytes(data[24:26], "little")
        compression, image_size = 0, 0
    else:
        if len(data) < 14 + 24:
            raise _corrupt("bmp", "the file ends inside its header")
        width, height = struct.unpack_from("<ii", data, 18)
        bpp = int.from_bytes(data[28:30], "little")
        compression = int.from_bytes(data[30:34], "little")
        image_size = int.from_bytes(data[34:38], "little")
    if offset > len(data):
        raise _corrupt("bmp", "the pixel data starts past the end of the file")
    if compression in (0, 3, 6):  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: rows as stored
        row = ((abs(width) * bpp + 31) // 32) * 4
        need = row * abs(height)
    else:  # RLE, JPEG, PNG inside: the header's own size of the data, when it gives one
        need = image_size
    if offset + need > len(data):
        raise _corrupt(
            "bmp",
            f"the header declares {need:,} bytes of pixels, the file has "
            f"{max(0, len(data) - offset):,}",
        )


def _avif(data: bytes | bytearray) -> None:
    """Top-level ISO-BMFF boxes tile the file exactly; ``meta`` and the data are there."""
    pos, end = 0, len(data)
    seen: set[bytes] = set()
    while pos < end:
        if pos + 8 > end:
            raise _corrupt("avif", "the file ends inside a box header")
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise _corrupt("avif", "the file ends inside a box header")
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _corrupt("avif", f"the {kind.decode('latin-1')!r} box runs past the end")
        seen.add(kind)
        pos += size
    if b"meta" not in seen:
        raise _corrupt("avif", "no 'meta' box")
    if b"mdat" not in seen and b"idat" not in seen:
        raise _corrupt("avif", "no image data ('mdat' box)")


_SIMPLE: dict[str, Callable[[bytes | bytearray], None]] = {
    "jpeg": _jpeg,
    "png": _png,
    "webp": _webp,
    "bmp": _bmp,
    "avif": _avif,
}


def check_structure(fmt: str, data: bytes | bytearray, im: Image.Image) -> None:
    """Raise ``CorruptImage`` when the file is cut short or its container is inconsistent.

    ``im`` is the file opened lazily by Pillow (its header parsed, no pixels decoded); TIFF
    uses its parsed directory. GIF is checked by ``gif_frames``, which also counts.
    """
    check = _SIMPLE.get(fmt)
    if check is not None:
        try:
            check(data)
        except (IndexError, struct.error):
            raise _corrupt(fmt, "the file ends inside its headers") from None
    elif fmt == "tiff":
        _tiff(im, data)

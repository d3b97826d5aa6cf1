"""Test images, generated: photo-like pictures, EXIF-rotated JPEGs, CMYK, 16-bit, palette
with transparency, hand-built ICC profiles, and headers that declare too many pixels."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageCms, ImageDraw

from pixtools.imaging.decode import avif_codec

#: The decoders' pixel limit the imaging unit tests run under.
MAX_PIXELS = 50_000_000

# Upright image -> the stored image that EXIF orientation N turns back upright.
STORED_FOR_ORIENTATION: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def photo(size: tuple[int, int] = (640, 480), seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: gradients, noise and a few shapes (seeded, deterministic)."""
    width, height = size
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.effect_noise(size, 40 + seed).point(lambda v: v // 2 + 64)
    im = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(im)
    for i in range(6):
        x0 = (seed * 37 + i * 97) % max(1, width - 10)
        y0 = (seed * 53 + i * 61) % max(1, height - 10)
        draw.ellipse(
            (x0, y0, x0 + width // 6, y0 + height // 6),
            fill=((i * 40) % 256, (i * 90) % 256, (i * 150) % 256),
        )
    return im


def quadrants(size: tuple[int, int] = (64, 32)) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    width, height = size
    im = Image.new("RGB", size)
    im.paste((255, 0, 0), (0, 0, width // 2, height // 2))
    im.paste((0, 255, 0), (width // 2, 0, width, height // 2))
    im.paste((0, 0, 255), (0, height // 2, width // 2, height))
    im.paste((255, 255, 255), (width // 2, height // 2, width, height))
    return im


def encode(im: Image.Image, fmt: str, **options: Any) -> bytes:
    if fmt == "AVIF":
        avif_codec()  # registers pillow-avif-plugin where Pillow has no AVIF of its own
    out = io.BytesIO()
    im.save(out, format=fmt, **options)
    return out.getvalue()


def exif_rotated_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG whose pixels are stored so that EXIF ``orientation`` displays ``upright``."""
    transpose = STORED_FOR_ORIENTATION[orientation]
    stored = upright.transpose(transpose) if transpose is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif)


# --- ICC profiles built by hand (ImageCms can only create sRGB, Lab and XYZ) -------------

_D50 = (0.9642, 1.0, 0.8249)
# sRGB's D50-adapted colorants.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in xyz)


def _desc_tag(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + b"\0" * 8  # no Unicode description
        + b"\0" * 3  # no ScriptCode description
        + b"\0" * 67
    )


def _gamma_tag(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256))


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    body = b""
    table = []
    offset = 128 + 4 + 12 * len(tags)
    for sig, data in tags.items():
        while (offset + len(body)) % 4:
            body += b"\0"
        table.append((sig, offset + len(body), len(data)))
        body += data
    tag_table = struct.pack(">I", len(tags)) + b"".join(
        sig + struct.pack(">II", off, size) for sig, off, size in table
    )
    size = 128 + len(tag_table) + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"
        + struct.pack(">I", 0x02100000)
        + device_class
        + space
        + pcs
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + b"\0" * 4
        + b"".join(_s15f16(v) for v in _D50)
        + b"\0" * 4
        + b"\0" * 44
    )
    assert len(header) == 128
    return header + tag_table + body


def swapped_rgb_profile() -> bytes:
    """An RGB profile whose red primary is sRGB's blue and blue is sRGB's red."""
    return _profile(
        b"mntr",
        b"RGB ",
        b"XYZ ",
        {
            b"desc": _desc_tag("PixTools test swapped RGB"),
            b"wtpt": _xyz_tag(_D50),
            b"rXYZ": _xyz_tag(SRGB_BLUE),
            b"gXYZ": _xyz_tag(SRGB_GREEN),
            b"bXYZ": _xyz_tag(SRGB_RED),
            b"rTRC": _gamma_tag(2.2),
            b"gTRC": _gamma_tag(2.2),
            b"bTRC": _gamma_tag(2.2),
        },
    )


# Colours of real process inks on white paper (roughly what ISO coated profiles give):
# far from the device conversion's pure (0, 255, 255) cyan and friends.
PROCESS_INKS = ((0, 160, 225), (230, 0, 126), (255, 237, 0), (35, 31, 32))


def process_cmyk_profile() -> bytes:
    """A CMYK input profile (lut8, Lab PCS, 2-point grid) whose inks are process colours
    (``PROCESS_INKS``), overprinting multiplicatively."""
    corners_rgb = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = [1.0, 1.0, 1.0]
                    for present, ink in zip((c, m, y, k), PROCESS_INKS, strict=True):
                        if present:
                            rgb = [v * i / 255 for v, i in zip(rgb, ink, strict=True)]
                    corners_rgb.append(tuple(round(v * 255) for v in rgb))
    strip = Image.new("RGB", (16, 1))
    strip.putdata(corners_rgb)
    to_lab = ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
    )
    lab = ImageCms.applyTransform(strip, to_lab)
    assert lab is not None
    # Pillow's LAB stores a and b as signed bytes; lut8's Lab encoding offsets them by 128.
    raw = lab.tobytes()
    clut = bytes(v if i % 3 == 0 else v ^ 0x80 for i, v in enumerate(raw))
    identity = bytes(range(256))
    mft1 = (
        b"mft1\0\0\0\0"
        + bytes([4, 3, 2, 0])
        + b"".join(_s15f16(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + identity * 4
        + clut
        + identity * 3
    )
    return _profile(
        b"prtr",
        b"CMYK",
        b"Lab ",
        {b"desc": _desc_tag("PixTools test process CMYK"), b"wtpt": _xyz_tag(_D50), b"A2B0": mft1},
    )


# --- headers that declare too many pixels ----------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def rgb16_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A 16-bit-per-channel RGB PNG of one colour (Pillow cannot write one)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    row = b"\x00" + struct.pack(">HHH", *rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(row * height))
        + _png_chunk(b"IEND", b"")
    )


def rgb16_tiff(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A 16-bit-per-channel RGB TIFF (little-endian, uncompressed) of one colour."""
    pixels = struct.pack("<HHH", *rgb) * (width * height)
    n = 10
    ifd_size = 2 + n * 12 + 4
    bits_at = 8 + ifd_size
    data_at = bits_at + 6
    entries = [
        (256, 4, 1, struct.pack("<I", width)),
        (257, 4, 1, struct.pack("<I", height)),
        (258, 3, 3, struct.pack("<I", bits_at)),  # BitsPerSample 16,16,16 (at an offset)
        (259, 3, 1, struct.pack("<HH", 1, 0)),  # no compression
        (262, 3, 1, struct.pack("<HH", 2, 0)),  # RGB
        (273, 4, 1, struct.pack("<I", data_at)),
        (277, 3, 1, struct.pack("<HH", 3, 0)),  # SamplesPerPixel
        (278, 4, 1, struct.pack("<I", height)),
        (279, 4, 1, struct.pack("<I", len(pixels))),
        (284, 3, 1, struct.pack("<HH", 1, 0)),  # PlanarConfiguration contiguous
    ]
    assert len(entries) == n
    ifd = struct.pack("<H", n) + b"".join(
        struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries
    )
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", 16, 16, 16) + pixels


def huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose IHDR declares width x height; its data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def huge_jpeg(width: int = 60_000, height: int = 60_000) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def huge_gif(width: int = 65_000, height: int = 65_000) -> bytes:
    data = bytearray(encode(Image.new("P", (16, 16)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    desc = data.index(b"\x2c", 13)
    data[desc + 5 : desc + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def huge_bmp(width: int = 100_000, height: int = 100_000) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def huge_webp(width: int = 16_000, height: int = 16_000) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16)), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L"
    # VP8L header: signature 0x2f, then 14-bit width-1 and 14-bit height-1, little-endian.
    bits = int.from_bytes(data[21:25], "little")
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    data[21:25] = bits.to_bytes(4, "little")
    return bytes(data)


def huge_tiff(width: int = 100_000, height: int = 100_000) -> bytes:
    """A little-endian TIFF with one IFD declaring width x height, 8-bit grey, no strips."""
    entries = [
        (256, 4, 1, width),  # ImageWidth LONG
        (257, 4, 1, height),  # ImageLength LONG
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression none
        (262, 3, 1, 1),  # Photometric black is zero
        (273, 4, 1, 8),  # StripOffsets
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, 1),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def huge_avif(width: int = 10_000, height: int = 10_000) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16)), "AVIF"))
    at = data.index(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)


HUGE_HEADERS = {
    "png": huge_png,
    "jpeg": huge_jpeg,
    "gif": huge_gif,
    "bmp": huge_bmp,
    "webp": huge_webp,
    "tiff": huge_tiff,
    "avif": huge_avif,
}


def jpeg_bytes(
    width: int = 640, height: int = 480, color: tuple[int, int, int] = (180, 40, 60)
) -> bytes:
    """A real JPEG with some structure (a gradient and a box), made in memory."""
    img = Image.new("RGB", (width, height), color)
    px = img.load()
    assert px is not None
    for x in range(0, width, max(1, width // 64)):
        for y in range(height):
            px[x, y] = (x * 255 // width, y * 255 // height, 128)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_with_corrupt_pixels(width: int = 96, height: int = 64, mode: str = "RGB") -> bytes:
    """A PNG whose every chunk is whole (lengths and CRCs right) but whose deflate stream is
    broken: it passes the submit-time checks (header, container) and fails to decode on the
    worker, the one way left for a well-formed request to fail at render."""
    im = Image.linear_gradient("L").resize((width, height)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = bytearray(buf.getvalue())
    at = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[at - 4 : at])
    middle = at + 4 + length // 3
    data[middle : middle + 16] = b"\xff" * 16
    crc = zlib.crc32(data[at : at + 4 + length]) & 0xFFFFFFFF
    data[at + 4 + length : at + 8 + length] = struct.pack(">I", crc)
    return bytes(data)

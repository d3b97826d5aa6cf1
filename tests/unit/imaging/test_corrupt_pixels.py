"""A file whose container is whole but whose compressed pixels are not must fail to decode.

Regression: reading a PNG's EXIF loads it; a decode error raised there was swallowed as
"malformed EXIF", and the second ``load()`` returned the half-decoded image as if whole (a
corrupt PNG rendered as grey and the output "succeeded").
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from pixtools.imaging.decode import decode
from pixtools.imaging.errors import CorruptImage


def png_with_corrupt_pixels(width: int, height: int, mode: str) -> bytes:
    """A PNG with every chunk whole (lengths and CRCs right) and its deflate stream broken."""
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


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize(("width", "height"), [(96, 64), (300, 200), (64, 640)])
def test_a_png_with_corrupt_pixel_data_is_refused_not_rendered(
    width: int, height: int, mode: str
) -> None:
    data = png_with_corrupt_pixels(width, height, mode)
    with pytest.raises(CorruptImage, match="corrupt or truncated PNG"):
        decode(data, max_pixels=50_000_000)

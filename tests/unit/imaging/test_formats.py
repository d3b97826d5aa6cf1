"""Formats are sniffed from the bytes; anything but the seven accepted formats is 415."""

from __future__ import annotations

import pytest
from PIL import Image

from pixtools.imaging import ImageErrorKind, UnsupportedFormat, probe, sniff_format
from tests.support.images import MAX_PIXELS, encode

PIL_NAMES = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "avif": "AVIF",
    "gif": "GIF",
    "tiff": "TIFF",
    "bmp": "BMP",
}


@pytest.mark.parametrize("fmt", sorted(PIL_NAMES))
def test_every_accepted_format_is_sniffed_from_32_bytes(fmt: str) -> None:
    data = encode(Image.new("RGB", (8, 8), (10, 20, 30)), PIL_NAMES[fmt])
    assert sniff_format(data[:32]) == fmt
    info = probe(data, max_pixels=MAX_PIXELS)
    assert (info.format, info.width, info.height, info.frames) == (fmt, 8, 8, 1)
    assert info.content_type == f"image/{fmt}"


NOT_IMAGES = {
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "svg-bare": b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>',
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,
    "gzip": b"\x1f\x8b\x08\x00" + b"\x00" * 40,
    "text": b"hello, this is plain text and not an image at all\n",
    "html": b"<!DOCTYPE html><html><body>hi</body></html>",
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 16,
    "ico": b"\x00\x00\x01\x00\x01\x00\x10\x10" + b"\x00" * 40,
    "psd": b"8BPS\x00\x01" + b"\x00" * 40,
    "bm-text": b"BM is how this text file starts, but it is not a bitmap",
    "empty": b"",
}


@pytest.mark.parametrize("data", NOT_IMAGES.values(), ids=NOT_IMAGES.keys())
def test_non_images_are_unsupported_415(data: bytes) -> None:
    assert sniff_format(data[:32]) is None
    with pytest.raises(UnsupportedFormat) as caught:
        probe(data, max_pixels=MAX_PIXELS)
    assert caught.value.kind is ImageErrorKind.UNSUPPORTED


def test_the_file_name_or_declared_type_plays_no_part() -> None:
    png = encode(Image.new("RGB", (4, 4)), "PNG")
    # Whatever the client calls it, PNG bytes are PNG.
    assert probe(png, max_pixels=MAX_PIXELS).format == "png"


def test_avif_with_generic_major_brand_and_avif_compatible_brand() -> None:
    head = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf"
    assert sniff_format(head) == "avif"

"""``keep_metadata`` copies the source's descriptive tags only (never its layout: a TIFF
output must describe its own pixels) and drops, with a warning in the output's result,
whatever the library or the format cannot write back, instead of failing the output."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from pixtools.imaging import render_output
from pixtools.jobspec.ops import Convert, KeepMetadata, OutputFormat, Resize
from tests.support.images import MAX_PIXELS, photo


def _tiff(im: Image.Image) -> bytes:
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[270] = "a harbour at dawn"
    tags[315] = "A. Photographer"
    tags[33432] = "(c) 2026 A. Photographer"
    out = io.BytesIO()
    im.save(out, format="TIFF", tiffinfo=tags)
    return out.getvalue()


def _reopen(data: bytes | None) -> Image.Image:
    im = Image.open(io.BytesIO(data or b""))
    im.load()  # a TIFF declaring the source's size and strips fails here
    return im


def test_a_resized_tiff_declares_its_own_size_and_keeps_its_description() -> None:
    out = render_output(
        _tiff(photo((400, 300))), [KeepMetadata(), Resize(width=100)], max_pixels=MAX_PIXELS
    )
    assert out.format == "tiff"
    im = _reopen(out.data)
    assert im.size == (100, 75)
    tags = im.getexif()
    assert (tags[256], tags[257]) == (100, 75)
    assert tags[270] == "a harbour at dawn" and tags[33432].startswith("(c) 2026")


def test_a_cmyk_tiff_with_metadata_gives_a_readable_file() -> None:
    cmyk = Image.new("CMYK", (40, 30), (0, 200, 200, 0))
    out = render_output(_tiff(cmyk), [KeepMetadata(), Resize(width=20)], max_pixels=MAX_PIXELS)
    im = _reopen(out.data)
    assert im.mode == "RGB" and im.size == (20, 15)
    r, g, b = im.getpixel((10, 7))  # type: ignore[misc]
    assert r > 200 and g < 120 and b < 120  # magenta + yellow ink: red


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_a_tiff_source_gives_no_layout_tags_to_other_formats(fmt: OutputFormat) -> None:
    out = render_output(
        _tiff(photo((64, 48))), [KeepMetadata(), Convert(format=fmt)], max_pixels=MAX_PIXELS
    )
    tags = _reopen(out.data).getexif()
    assert tags[315] == "A. Photographer"
    if fmt != "tiff":  # a TIFF's own directory has them, for its own pixels
        assert not {256, 257, 273, 279, 262} & set(tags)


def _raw_exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """EXIF with entries as given: (tag, type, count, 4-byte value field)."""
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(struct.pack("<HHI", t, k, c) + v for t, k, c, v in entries)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_a_resolution_stored_as_text_is_dropped_and_the_rest_kept(fmt: OutputFormat) -> None:
    exif = _raw_exif(
        [
            (0x010F, 2, 4, b"Cnn\x00"),  # Make
            (0x011A, 2, 4, b"72\x00\x00"),  # XResolution as ASCII: cannot be written back
            (0x011B, 3, 1, b"\x48\x00\x00\x00"),  # YResolution as SHORT
        ]
    )
    src = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(src, format="JPEG", exif=exif)
    out = render_output(
        src.getvalue(), [KeepMetadata(), Convert(format=fmt)], max_pixels=MAX_PIXELS
    )
    tags = _reopen(out.data).getexif()
    assert tags[0x010F] == "Cnn"
    assert 0x011A not in tags
    assert out.result is not None
    assert any("0x011A (XResolution)" in w for w in out.result["warnings"])


def test_an_exif_too_large_for_jpeg_loses_its_largest_entries_only() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x8298] = "(c) me"
    sub = exif.get_ifd(0x8769)
    for i in range(5400):
        sub[0xC000 + i] = f"value {i}"
    src = io.BytesIO()
    Image.new("RGB", (64, 48)).save(src, format="PNG", exif=exif.tobytes())
    out = render_output(
        src.getvalue(), [KeepMetadata(), Convert(format="jpeg")], max_pixels=MAX_PIXELS
    )
    tags = _reopen(out.data).getexif()
    assert tags[0x010F] == "Canon" and tags[0x8298] == "(c) me"
    assert 0 < len(tags.get_ifd(0x8769)) < 5400
    assert out.result is not None and "largest entries were dropped" in out.result["warnings"][0]


def test_a_2_mb_xmp_is_dropped_from_jpeg_and_kept_in_webp() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + "a" * 2_000_000 + "</x:xmpmeta>")
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    src = io.BytesIO()
    Image.new("RGB", (64, 48)).save(src, format="PNG", pnginfo=info, exif=exif.tobytes())
    jpeg = render_output(
        src.getvalue(), [KeepMetadata(), Convert(format="jpeg")], max_pixels=MAX_PIXELS
    )
    assert _reopen(jpeg.data).getexif()[0x010F] == "Canon"  # the EXIF is kept
    assert jpeg.result is not None and "XMP" in jpeg.result["warnings"][0]
    webp = render_output(
        src.getvalue(), [KeepMetadata(), Convert(format="webp")], max_pixels=MAX_PIXELS
    )
    assert webp.result is None and len(webp.data or b"") > 2_000_000

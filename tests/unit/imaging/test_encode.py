"""convert: every output format with quality, lossless and progressive where they apply;
no convert step keeps the source format."""

from __future__ import annotations

import io
from typing import cast

import pytest
from PIL import Image, ImageChops

from pixtools.imaging import render_output
from pixtools.imaging.encode import encoder_options
from pixtools.jobspec.ops import Convert, OutputFormat, Resize
from tests.support.images import MAX_PIXELS, encode, photo

EXPECTED = {
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "png": ("PNG", "image/png", "png"),
    "webp": ("WEBP", "image/webp", "webp"),
    "avif": ("AVIF", "image/avif", "avif"),
    "gif": ("GIF", "image/gif", "gif"),
    "tiff": ("TIFF", "image/tiff", "tiff"),
}


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_convert_to_every_format(photo_jpeg: bytes, fmt: OutputFormat) -> None:
    out = render_output(
        photo_jpeg,
        [Resize(width=200), Convert(format=fmt)],
        max_pixels=MAX_PIXELS,
    )
    pil_name, content_type, extension = EXPECTED[fmt]
    assert (out.format, out.content_type, out.extension) == (fmt, content_type, extension)
    assert (out.width, out.height) == (200, 150)
    assert out.result is None
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert im.format == pil_name and im.size == (200, 150)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_quality_trades_bytes(photo_jpeg: bytes, fmt: OutputFormat) -> None:
    sizes = [
        len(
            render_output(
                photo_jpeg,
                [Convert(format=fmt, quality=q)],
                max_pixels=MAX_PIXELS,
            ).data
            or b""
        )
        for q in (30, 90)
    ]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize("fmt", ["webp", "png"])
def test_lossless_outputs_keep_every_pixel(fmt: OutputFormat) -> None:
    src = photo((120, 90))
    data = encode(src, "PNG")
    step = Convert(format=fmt, lossless=True) if fmt == "webp" else Convert(format=fmt)
    out = render_output(data, [step], max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert ImageChops.difference(im.convert("RGB"), src).getbbox() is None


def test_lossless_avif_is_near_lossless() -> None:
    src = photo((120, 90))
    out = render_output(
        encode(src, "PNG"), [Convert(format="avif", lossless=True)], max_pixels=MAX_PIXELS
    )
    with Image.open(io.BytesIO(out.data or b"")) as im:
        diff = ImageChops.difference(im.convert("RGB"), src)
        extrema = cast("tuple[tuple[int, int], ...]", diff.getextrema())  # one pair per band
        assert max(hi for _lo, hi in extrema) <= 4


def test_progressive_jpeg(photo_jpeg: bytes) -> None:
    plain = render_output(photo_jpeg, [Convert(format="jpeg")], max_pixels=MAX_PIXELS)
    prog = render_output(
        photo_jpeg, [Convert(format="jpeg", progressive=True)], max_pixels=MAX_PIXELS
    )
    with (
        Image.open(io.BytesIO(plain.data or b"")) as a,
        Image.open(io.BytesIO(prog.data or b"")) as b,
    ):
        assert not a.info.get("progressive") and b.info.get("progressive")


@pytest.mark.parametrize("pil_name", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF"])
def test_no_convert_step_keeps_the_source_format(pil_name: str) -> None:
    data = encode(photo((64, 48)), pil_name)
    out = render_output(data, [Resize(width=32)], max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert im.format == pil_name and im.size == (32, 24)
    assert out.format == pil_name.lower()


def test_encoder_settings_are_chosen() -> None:
    assert encoder_options("jpeg", None) == {
        "quality": 85,
        "optimize": True,
        "progressive": False,
        "subsampling": "4:2:0",
    }
    assert encoder_options("jpeg", Convert(format="jpeg", quality=95))["subsampling"] == "4:4:4"
    assert encoder_options("webp", None) == {"quality": 80, "method": 4}
    assert encoder_options("avif", None)["quality"] == 60
    assert encoder_options("png", None)["compress_level"] == 6

"""Preview renditions: small, upright, in proportion, WebP, from any format the engine reads."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pixtools.imaging import TooManyPixels, UnsupportedFormat
from pixtools.imaging.preview import PREVIEW_MAX_SIDE, make_preview, preview_size
from tests.support.images import encode, exif_rotated_jpeg, huge_png, photo, quadrants

MAX_PIXELS = 50_000_000


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@given(st.integers(1, 20_000), st.integers(1, 20_000), st.integers(8, 1024))
def test_preview_size_fits_the_box_keeps_the_ratio_and_never_enlarges(
    w: int, h: int, side: int
) -> None:
    pw, ph = preview_size(w, h, side)
    assert 1 <= pw <= min(w, side) and 1 <= ph <= min(h, side)
    assert max(pw, ph) == min(max(w, h), side)
    if min(pw, ph) > 20:  # rounding aside, the shape is kept
        assert abs(pw / ph - w / h) / (w / h) < 0.1


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"]),
    st.integers(16, 1200),
    st.integers(16, 1200),
)
def test_any_format_becomes_a_small_webp(fmt: str, w: int, h: int) -> None:
    data = encode(photo((w, h)), fmt)
    im = opened(make_preview(data, max_pixels=MAX_PIXELS))
    assert im.format == "WEBP"
    assert im.size == preview_size(w, h)
    assert max(im.size) <= PREVIEW_MAX_SIDE


def test_transparency_is_kept() -> None:
    rgba = photo((400, 200)).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 0))
    im = opened(make_preview(encode(rgba, "PNG"), max_pixels=MAX_PIXELS))
    assert im.mode == "RGBA"
    assert im.getpixel((10, 10))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_sources_are_shown_upright(orientation: int) -> None:
    upright = quadrants((640, 320))  # red top-left in the upright picture
    data = exif_rotated_jpeg(upright, orientation)
    im = opened(make_preview(data, max_pixels=MAX_PIXELS)).convert("RGB")
    assert im.size == (320, 160)
    top_left = im.getpixel((20, 20))
    assert top_left == pytest.approx(upright.resize((320, 160)).getpixel((20, 20)), abs=40)


def test_bad_input_raises_the_engines_errors() -> None:
    with pytest.raises(UnsupportedFormat):
        make_preview(b"not an image at all, just text", max_pixels=MAX_PIXELS)
    with pytest.raises(TooManyPixels):
        make_preview(huge_png(), max_pixels=MAX_PIXELS)

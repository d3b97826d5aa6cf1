"""grayscale, blur, sharpen, adjust and watermark: expected pixels."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops, ImageStat

from pixtools.imaging import StepContext
from pixtools.imaging.ops import adjust, blur, grayscale, sharpen, watermark
from pixtools.imaging.ops.watermark import FONT_PATH
from pixtools.jobspec.ops import Adjust, Blur, Grayscale, Sharpen, Watermark
from tests.support.images import photo, swapped_rgb_profile


def ctx() -> StepContext:
    return StepContext(source_format="png", source_size=(320, 240))


def variance(im: Image.Image) -> float:
    return sum(ImageStat.Stat(im.convert("L")).var)


def test_grayscale_is_mode_l_and_keeps_alpha_as_la() -> None:
    im = photo((64, 48))
    out = grayscale(im, Grayscale(), ctx())
    assert out.mode == "L" and out.size == im.size
    assert ImageChops.difference(out, im.convert("L")).getbbox() is None
    assert grayscale(im.convert("RGBA"), Grayscale(), ctx()).mode == "LA"
    grey = im.convert("L")
    assert grayscale(grey, Grayscale(), ctx()) is grey


def test_grayscale_goes_through_srgb_when_the_pixels_carry_a_profile() -> None:
    im = Image.new("RGB", (8, 8), (255, 0, 0))  # in the swapped profile, this is blue
    c = ctx()
    c.icc_profile = swapped_rgb_profile()
    out = grayscale(im, Grayscale(), c)
    assert c.icc_profile is None
    # sRGB blue's luminance is far below red's.
    assert out.getpixel((0, 0)) < im.convert("L").getpixel((0, 0))


def test_blur_lowers_variance() -> None:
    im = photo((160, 120))
    out = blur(im, Blur(sigma=3), ctx())
    assert out.size == im.size and variance(out) < variance(im) * 0.9


def test_blur_does_not_bleed_transparent_colour() -> None:
    im = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    im.paste((0, 0, 255, 255), (20, 0, 40, 40))
    out = blur(im, Blur(sigma=4), ctx())
    r, _g, b, a = out.getpixel((19, 20))  # type: ignore[misc]
    assert 0 < a < 255 and r < 10 and b > 200


def test_sharpen_raises_edge_contrast_and_zero_is_identity() -> None:
    im = photo((160, 120)).filter(__import__("PIL.ImageFilter").ImageFilter.GaussianBlur(2))
    out = sharpen(im, Sharpen(amount=2, radius=2), ctx())
    assert variance(out) > variance(im)
    assert sharpen(im, Sharpen(amount=0), ctx()) is im
    rgba = im.convert("RGBA")
    rgba.putalpha(128)
    assert sharpen(rgba, Sharpen(), ctx()).getchannel("A").getextrema() == (128, 128)


def test_adjust() -> None:
    im = photo((64, 48))
    assert adjust(im, Adjust(), ctx()) is im
    brighter = adjust(im, Adjust(brightness=1.5), ctx())
    assert ImageStat.Stat(brighter).mean[0] > ImageStat.Stat(im).mean[0]
    flat = adjust(im, Adjust(contrast=0), ctx())
    assert variance(flat) < 1
    grey = adjust(im, Adjust(saturation=0), ctx())
    r, g, b = grey.getpixel((10, 10))  # type: ignore[misc]
    assert abs(r - g) <= 1 and abs(g - b) <= 1


def test_watermark_font_is_bundled() -> None:
    assert FONT_PATH.is_file() and FONT_PATH.suffix == ".ttf"
    assert "site-packages" in str(FONT_PATH) or "src/pixtools" in str(FONT_PATH)


@pytest.mark.parametrize(
    ("position", "quadrant"),
    [
        ("bottom-right", (160, 120, 320, 240)),
        ("bottom-left", (0, 120, 160, 240)),
        ("top-right", (160, 0, 320, 120)),
        ("top-left", (0, 0, 160, 120)),
        ("center", (80, 60, 240, 180)),
    ],
)
def test_watermark_draws_text_at_its_position(
    position: str, quadrant: tuple[int, int, int, int]
) -> None:
    im = Image.new("RGB", (320, 240), (30, 90, 160))
    out = watermark(im, Watermark(text="PixTools", position=position, opacity=1.0), ctx())  # type: ignore[arg-type]
    changed = ImageChops.difference(out, im).getbbox()
    assert changed is not None
    x0, y0, x1, y1 = changed
    qx0, qy0, qx1, qy1 = quadrant
    assert qx0 <= x0 and x1 <= qx1 and qy0 <= y0 and y1 <= qy1
    assert (x1 - x0) > 20  # text, not a dot
    assert im.getpixel((0, 0)) == (30, 90, 160)  # input untouched


def test_watermark_opacity_size_and_modes() -> None:
    im = Image.new("RGB", (320, 240), (30, 90, 160))
    assert (
        ImageChops.difference(watermark(im, Watermark(text="x", opacity=0), ctx()), im).getbbox()
        is None
    )
    small = ImageChops.difference(
        watermark(im, Watermark(text="Hello", size=0.05), ctx()), im
    ).getbbox()
    large = ImageChops.difference(
        watermark(im, Watermark(text="Hello", size=0.15), ctx()), im
    ).getbbox()
    assert small and large and (large[3] - large[1]) > 2 * (small[3] - small[1])
    # Text too long for the width is shrunk to fit inside it.
    wide = watermark(im, Watermark(text="W" * 200, size=1.0), ctx())
    assert wide.size == im.size
    for mode in ("L", "LA", "RGBA"):
        out = watermark(im.convert(mode), Watermark(text="PixTools"), ctx())
        assert out.mode == mode and out.size == im.size
    clear = watermark(Image.new("RGBA", (320, 240)), Watermark(text="PixTools", opacity=1), ctx())
    assert clear.getchannel("A").getextrema()[1] == 255


def test_watermark_on_a_tiny_image_is_clipped_not_an_error() -> None:
    for mode in ("RGB", "RGBA", "L", "LA"):
        tiny = Image.new(mode, (12, 5))
        out = watermark(tiny, Watermark(text="a long watermark text", size=1.0), ctx())
        assert out.size == (12, 5) and out.mode == mode

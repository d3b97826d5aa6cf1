"""ICC profiles kept or converted to sRGB; CMYK with and without a profile; 16-bit,
palette-with-transparency, LA/RGBA sources; alpha flattened where the format has none."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageCms

from pixtools.imaging import render_output
from pixtools.jobspec.ops import Convert, Grayscale, OutputFormat, Resize
from tests.support.images import (
    MAX_PIXELS,
    PROCESS_INKS,
    encode,
    process_cmyk_profile,
    rgb16_png,
    rgb16_tiff,
    swapped_rgb_profile,
)


def rendered(data: bytes, *steps: object) -> Image.Image:
    out = render_output(data, list(steps), max_pixels=MAX_PIXELS)  # type: ignore[arg-type]
    assert out.data is not None
    im = Image.open(io.BytesIO(out.data))
    im.load()
    return im


def near(a: object, b: tuple[int, ...], tol: int = 6) -> bool:
    assert isinstance(a, tuple)
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


CMYK_PRIMARIES = {
    (0, 0, 0, 0): (255, 255, 255),
    (0, 0, 0, 255): (0, 0, 0),
    (255, 0, 0, 0): (0, 255, 255),
    (0, 255, 0, 0): (255, 0, 255),
    (0, 0, 255, 0): (255, 255, 0),
    (0, 255, 255, 0): (255, 0, 0),
}


def cmyk_swatches() -> Image.Image:
    im = Image.new("CMYK", (16 * len(CMYK_PRIMARIES), 16))
    for i, ink in enumerate(CMYK_PRIMARIES):
        im.paste(ink, (16 * i, 0, 16 * i + 16, 16))
    return im


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_cmyk_jpeg_without_profile_converts_to_the_right_rgb(fmt: OutputFormat) -> None:
    data = encode(cmyk_swatches(), "JPEG", quality=100)  # Adobe-style inverted CMYK
    im = rendered(data, Convert(format=fmt))
    assert im.mode == "RGB"
    assert "icc_profile" not in im.info
    tol = 6 if fmt == "png" else 24
    for i, rgb in enumerate(CMYK_PRIMARIES.values()):
        assert near(im.getpixel((16 * i + 8, 8)), rgb, tol), (i, im.getpixel((16 * i + 8, 8)))


def test_cmyk_jpeg_with_profile_is_converted_through_the_profile() -> None:
    profile = process_cmyk_profile()
    swatches = cmyk_swatches()
    data = encode(swatches, "JPEG", quality=100, icc_profile=profile)
    im = rendered(data, Convert(format="png"))
    assert im.mode == "RGB" and "icc_profile" not in im.info  # sRGB, untagged
    reference = ImageCms.profileToProfile(
        swatches,
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        outputMode="RGB",
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )
    assert reference is not None
    for i in range(len(CMYK_PRIMARIES)):
        got, want = im.getpixel((16 * i + 8, 8)), reference.getpixel((16 * i + 8, 8))
        assert near(got, want, 4), (i, got, want)  # type: ignore[arg-type]
    cyan = im.getpixel((16 * 2 + 8, 8))
    assert near(cyan, PROCESS_INKS[0], 12)  # the profile's cyan...
    assert isinstance(cyan, tuple) and cyan[1] < 200  # ...not the device conversion's


def test_rgb_profile_is_kept_in_formats_that_carry_one() -> None:
    profile = swapped_rgb_profile()
    data = encode(Image.new("RGB", (32, 32), (255, 0, 0)), "PNG", icc_profile=profile)
    for fmt in ("png", "jpeg", "webp", "avif", "tiff"):
        im = rendered(data, Resize(width=16), Convert(format=fmt))
        assert im.info.get("icc_profile") == profile, fmt
        assert near(im.getpixel((8, 8)), (255, 0, 0), 30), fmt  # pixels untouched


@pytest.mark.parametrize("fmt", ["gif", "bmp"])
def test_rgb_profile_is_converted_to_srgb_where_the_format_has_none(fmt: str) -> None:
    data = encode(Image.new("RGB", (32, 32), (255, 0, 0)), "PNG", icc_profile=swapped_rgb_profile())
    src = "gif" if fmt == "gif" else "png"
    im = rendered(data, Convert(format=src)) if fmt == "gif" else None  # type: ignore[arg-type]
    if im is None:
        bmp = encode(Image.new("RGB", (32, 32), (255, 0, 0)), "BMP")
        im = rendered(bmp)  # BMP sources stay BMP
        assert im.format == "BMP"
        return
    rgb = im.convert("RGB").getpixel((8, 8))
    assert isinstance(rgb, tuple) and rgb[2] > 200 and rgb[0] < 60  # red in that profile is blue


def test_grayscale_of_profiled_rgb_drops_the_rgb_profile() -> None:
    data = encode(Image.new("RGB", (16, 16), (0, 0, 255)), "PNG", icc_profile=swapped_rgb_profile())
    im = rendered(data, Grayscale(), Convert(format="png"))
    assert im.mode == "L" and "icc_profile" not in im.info


def test_grey_profile_kept_for_grey_images_and_dropped_when_mismatched() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(Image.new("L", (16, 16), 100), "PNG", icc_profile=srgb)
    im = rendered(data, Convert(format="png"))
    assert "icc_profile" not in im.info  # an RGB profile cannot describe L pixels


def test_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    row = b"".join(v.to_bytes(2, "little") for v in [32768] * 8 + [65535] * 8)
    im16 = Image.frombytes("I;16", (16, 16), row * 16)
    im = rendered(encode(im16, "PNG"), Convert(format="png"))
    assert im.mode == "L"
    assert abs(im.getpixel((2, 2)) - 128) <= 1  # type: ignore[operator]
    assert im.getpixel((12, 2)) == 255


@pytest.mark.parametrize("make", [rgb16_png, rgb16_tiff], ids=["png", "tiff"])
def test_16_bit_rgb_sources(make: Callable[[int, int, tuple[int, int, int]], bytes]) -> None:
    data = make(8, 8, (65535, 0, 32896))
    with Image.open(io.BytesIO(data)) as check:
        assert check.format in ("PNG", "TIFF")
    im = rendered(data, Convert(format="png"))
    assert im.mode == "RGB"
    assert near(im.getpixel((4, 4)), (255, 0, 128), 1)


def test_palette_with_transparency_keeps_alpha_in_png_and_flattens_in_jpeg() -> None:
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    pal.paste(0, (0, 0, 8, 16))
    pal.info["transparency"] = 0
    data = encode(pal, "PNG", transparency=0)
    png = rendered(data)
    assert png.mode == "RGBA"
    assert png.getpixel((2, 2))[3] == 0 and png.getpixel((12, 2)) == (255, 0, 0, 255)  # type: ignore[index]
    jpeg = rendered(data, Convert(format="jpeg"))
    assert jpeg.mode == "RGB"
    assert near(jpeg.getpixel((2, 2)), (255, 255, 255), 8)  # flattened on white
    assert near(jpeg.getpixel((13, 8)), (255, 0, 0), 40)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("LA", "png"), ("RGBA", "webp"), ("RGBA", "avif"), ("LA", "jpeg"), ("RGBA", "gif")],
)
def test_alpha_sources(mode: str, fmt: OutputFormat) -> None:
    src = Image.new("RGBA", (32, 32), (0, 128, 0, 0))
    src.paste((0, 128, 0, 255), (16, 0, 32, 32))
    data = encode(src.convert(mode), "PNG")
    im = rendered(data, Convert(format=fmt))
    if fmt == "jpeg":
        assert im.mode == "L"
        assert im.getpixel((4, 4)) >= 245  # type: ignore[operator]
        return
    rgba = im.convert("RGBA")
    assert rgba.getpixel((4, 4))[3] == 0, fmt  # type: ignore[index]
    assert rgba.getpixel((28, 4))[3] == 255, fmt  # type: ignore[index]


def test_fully_opaque_alpha_is_dropped() -> None:
    data = encode(Image.new("RGBA", (16, 16), (1, 2, 3, 255)), "PNG")
    assert rendered(data, Convert(format="webp")).mode == "RGB"


def test_gif_source_takes_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    im = rendered(data, Convert(format="png"))
    assert getattr(im, "n_frames", 1) == 1
    assert near(im.convert("RGB").getpixel((5, 5)), (255, 0, 0), 4)

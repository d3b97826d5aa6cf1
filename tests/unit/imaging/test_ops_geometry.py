"""resize, crop, rotate and flip: expected geometry and pixels, and the map back to source."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops

from pixtools.imaging import OperationError, StepContext
from pixtools.imaging.ops import crop, flip, resize, rotate
from pixtools.imaging.ops.resize import resize_geometry
from pixtools.jobspec.ops import Crop, Flip, Resize, Rotate
from tests.support.images import photo, quadrants


def ctx(size: tuple[int, int] = (640, 480)) -> StepContext:
    return StepContext(source_format="png", source_size=size)


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and ImageChops.difference(a, b).getbbox() is None


# --- resize -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (Resize(width=320), (320, 240)),
        (Resize(height=120), (160, 120)),
        (Resize(width=320, height=320), (320, 240)),
        (Resize(width=320, height=320, fit="inside"), (320, 240)),
        (Resize(width=320, height=320, fit="cover"), (320, 320)),
        (Resize(width=320, height=100, fit="fill"), (320, 100)),
        (Resize(width=1280), (640, 480)),  # never enlarges...
        (Resize(width=1280, upscale=True), (1280, 960)),  # ...unless asked
        (Resize(width=1280, height=1280, fit="cover"), (480, 480)),  # box shrunk to fit
        (Resize(width=1280, height=640, fit="fill"), (640, 320)),
        (Resize(width=1000, height=1000, fit="cover", upscale=True), (1000, 1000)),
    ],
)
def test_resize_sizes(params: Resize, expected: tuple[int, int]) -> None:
    out = resize(photo((640, 480)), params, ctx())
    assert out.size == expected


def test_resize_that_changes_nothing_returns_the_same_image() -> None:
    im = photo((64, 48))
    assert resize(im, Resize(width=640), ctx()) is im


def test_cover_crops_by_gravity() -> None:
    im = quadrants((200, 100))  # red | green on top, blue | white below
    c = ctx()
    west = resize(im, Resize(width=50, height=50, fit="cover", gravity="west"), c)
    east = resize(im, Resize(width=50, height=50, fit="cover", gravity="east"), ctx())
    assert west.getpixel((10, 10)) == (255, 0, 0)
    assert east.getpixel((40, 10)) == (0, 255, 0)
    # Output (0, 0) comes from source (0, 0); output (50, 50) from source (100, 100).
    assert c.point_to_source(50, 50) == pytest.approx((100, 100))
    tall = quadrants((100, 200))
    north = resize(tall, Resize(width=50, height=50, fit="cover", gravity="north"), ctx())
    south = resize(tall, Resize(width=50, height=50, fit="cover", gravity="south"), ctx())
    assert north.getpixel((10, 10)) == (255, 0, 0)
    assert south.getpixel((10, 40)) == (0, 0, 255)


def test_smart_gravity_crops_where_the_detail_is() -> None:
    im = Image.new("RGB", (400, 100), (120, 120, 120))
    detail = photo((100, 100), seed=3)
    im.paste(detail, (280, 0))
    c = ctx()
    out = resize(im, Resize(width=100, height=100, fit="cover", gravity="smart"), c)
    assert out.size == (100, 100)
    left, _ = c.point_to_source(0, 0)
    assert 240 <= left <= 300
    flat = Image.new("RGB", (400, 100), (50, 60, 70))
    c2 = ctx()
    resize(flat, Resize(width=100, height=100, fit="cover", gravity="smart"), c2)
    assert c2.point_to_source(0, 0)[0] == pytest.approx(150)  # no detail: centre


def test_resize_geometry_keeps_inside_the_box() -> None:
    size, box = resize_geometry(1001, 333, Resize(width=100, height=100))
    assert size == (100, 33) and box == (0, 0, 1001, 333)


def test_resize_keeps_alpha_edges_clean() -> None:
    im = Image.new("RGBA", (100, 100), (255, 0, 0, 0))
    im.paste((0, 0, 255, 255), (50, 0, 100, 100))
    out = resize(im, Resize(width=10), ctx())
    r, _g, b, a = out.getpixel((5, 5))  # type: ignore[misc]
    if a:  # a half-covered pixel is blue, not purple: transparent red does not bleed in
        assert b > 200 and r < 10


# --- crop -------------------------------------------------------------------------------


def test_crop_cuts_the_box_and_maps_back() -> None:
    im = photo((640, 480))
    c = ctx()
    out = crop(im, Crop(left=100, top=50, width=200, height=100), c)
    assert out.size == (200, 100)
    assert same(out, im.crop((100, 50, 300, 150)))
    assert c.box_to_source((0, 0, 200, 100)) == [100, 50, 300, 150]


def test_crop_outside_the_image_is_rejected() -> None:
    with pytest.raises(OperationError, match="outside the 640x480 image"):
        crop(photo((640, 480)), Crop(left=600, top=0, width=100, height=10), ctx())


# --- rotate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("degrees", "transpose"),
    [
        (90, Image.Transpose.ROTATE_90),
        (180, Image.Transpose.ROTATE_180),
        (270, Image.Transpose.ROTATE_270),
        (-90, Image.Transpose.ROTATE_270),
        (450, Image.Transpose.ROTATE_90),
    ],
)
def test_quarter_turns_are_lossless_transpositions(
    degrees: float, transpose: Image.Transpose
) -> None:
    im = photo((64, 48))
    assert same(rotate(im, Rotate(degrees=degrees), ctx()), im.transpose(transpose))


@pytest.mark.parametrize("degrees", [90, 180, 270, 30, -45])
def test_rotation_maps_points_back_to_the_source(degrees: float) -> None:
    im = Image.new("RGB", (200, 100), (0, 0, 0))
    im.paste((255, 255, 255), (20, 10, 30, 20))  # a marker around (25, 15)
    c = ctx((200, 100))
    out = rotate(im, Rotate(degrees=degrees, background="#000"), c)
    bbox = out.convert("L").point(lambda v: 255 if v > 128 else 0).getbbox()
    assert bbox is not None
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    assert c.point_to_source(cx, cy) == pytest.approx((25, 15), abs=1.5)


def test_zero_and_full_turns_return_the_same_image() -> None:
    im = photo((64, 48))
    assert rotate(im, Rotate(degrees=0), ctx()) is im
    assert rotate(im, Rotate(degrees=360), ctx()) is im


def test_other_angles_expand_the_canvas_with_the_background() -> None:
    im = Image.new("RGB", (100, 50), (0, 0, 255))
    out = rotate(im, Rotate(degrees=45), ctx())
    expected = im.rotate(45, Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    assert same(out, expected)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)  # default white
    red = rotate(im, Rotate(degrees=30, background="#ff0000"), ctx())
    assert red.getpixel((0, 0)) == (255, 0, 0)
    clear = rotate(im, Rotate(degrees=30, background="#00000000"), ctx())
    assert clear.mode == "RGBA" and clear.getpixel((0, 0)) == (0, 0, 0, 0)
    alpha = rotate(im.convert("RGBA"), Rotate(degrees=30), ctx())
    assert alpha.getpixel((0, 0)) == (0, 0, 0, 0)  # default transparent when alpha exists
    grey = rotate(im.convert("L"), Rotate(degrees=30, background="#ff8800"), ctx())
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (255, 136, 0)


# --- flip -------------------------------------------------------------------------------


def test_flips_equal_pil_transpose_and_map_back() -> None:
    im = photo((64, 48))
    c = ctx((64, 48))
    assert same(
        flip(im, Flip(direction="horizontal"), c), im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    )
    assert c.point_to_source(0, 10) == (64, 10)
    c = ctx((64, 48))
    assert same(
        flip(im, Flip(direction="vertical"), c), im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    )
    assert c.point_to_source(10, 0) == (10, 48)


def test_ops_do_not_mutate_their_input() -> None:
    im = photo((64, 48))
    before = im.copy()
    for fn, params in [
        (resize, Resize(width=20)),
        (crop, Crop(left=1, top=1, width=10, height=10)),
        (rotate, Rotate(degrees=33)),
        (flip, Flip(direction="vertical")),
    ]:
        fn(im, params, ctx())  # type: ignore[operator]
    assert same(im, before)

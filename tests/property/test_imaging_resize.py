"""Properties of resize and crop: for any source size and params, the output size obeys the
fit mode, never exceeds the box, and never enlarges without upscale; a crop is inside or
rejected."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pixtools.imaging import OperationError, StepContext, render_output
from pixtools.imaging.errors import TooManyPixels
from pixtools.imaging.ops import crop, resize
from pixtools.imaging.ops.resize import resize_geometry
from pixtools.jobspec.ops import Convert, Crop, Resize, Rotate

sides = st.integers(min_value=1, max_value=5000)
box_sides = st.integers(min_value=1, max_value=16384)


@st.composite
def resize_params(draw: st.DrawFn) -> Resize:
    width = draw(st.none() | box_sides)
    height = draw(box_sides) if width is None else draw(st.none() | box_sides)
    return Resize(
        width=width,
        height=height,
        fit=draw(st.sampled_from(["contain", "inside", "cover", "fill"])),
        gravity=draw(st.sampled_from(["center", "north", "south", "east", "west", "smart"])),
        upscale=draw(st.booleans()),
    )


@settings(max_examples=2000, deadline=None)
@given(width=sides, height=sides, p=resize_params())
def test_resize_geometry_obeys_the_fit_mode(width: int, height: int, p: Resize) -> None:
    (out_w, out_h), (left, top, right, bottom) = resize_geometry(width, height, p)
    assert out_w >= 1 and out_h >= 1
    # Never larger than the box on a given side.
    if p.width is not None:
        assert out_w <= p.width
    if p.height is not None:
        assert out_h <= p.height
    # Never enlarges without upscale, on either axis.
    if not p.upscale:
        assert out_w <= width and out_h <= height
    # The region read lies inside the image.
    assert 0 <= left < right <= width + 1e-6 and 0 <= top < bottom <= height + 1e-6
    both = p.width is not None and p.height is not None
    if p.fit in ("contain", "inside") or not both:
        # Aspect kept (within rounding) and one side touches the box or the source.
        assert (left, top, right, bottom) == (0, 0, width, height)
        scale = min(b / s for b, s in ((p.width, width), (p.height, height)) if b is not None)
        if not p.upscale:
            scale = min(scale, 1.0)
        for out_side, side in ((out_w, width), (out_h, height)):
            assert abs(out_side - side * scale) <= 0.5 + 1e-9 or (
                out_side == 1 and side * scale < 1
            )
    elif p.fit == "cover":
        # Exactly the box (shrunk keeping its aspect when upscale is off).
        if p.upscale or (p.width <= width and p.height <= height):  # type: ignore[operator]
            assert (out_w, out_h) == (p.width, p.height)
        region_aspect = (right - left) / (bottom - top)
        assert region_aspect == pytest.approx(out_w / out_h, rel=0.02, abs=1 / min(out_w, out_h))
    else:  # fill: the box, the whole image stretched
        assert (left, top, right, bottom) == (0, 0, width, height)
        if p.upscale or (p.width <= width and p.height <= height):  # type: ignore[operator]
            assert (out_w, out_h) == (p.width, p.height)


@settings(max_examples=150, deadline=2000)
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    p=resize_params().filter(lambda p: (p.width or 1) <= 600 and (p.height or 1) <= 600),
    mode=st.sampled_from(["RGB", "RGBA", "L", "LA"]),
)
def test_resize_output_matches_its_geometry(width: int, height: int, p: Resize, mode: str) -> None:
    im = Image.new(mode, (width, height))
    out = resize(im, p, StepContext(source_format="png", source_size=(width, height)))
    assert out.size == resize_geometry(width, height, p)[0]
    assert out.mode == mode


@settings(max_examples=500, deadline=None)
@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    left=st.integers(0, 600),
    top=st.integers(0, 600),
    cw=st.integers(1, 600),
    ch=st.integers(1, 600),
)
def test_crop_is_inside_or_rejected(
    width: int, height: int, left: int, top: int, cw: int, ch: int
) -> None:
    im = Image.new("L", (width, height))
    ctx = StepContext(source_format="png", source_size=(width, height))
    params = Crop(left=left, top=top, width=cw, height=ch)
    if left + cw <= width and top + ch <= height:
        out = crop(im, params, ctx)
        assert out.size == (cw, ch)
        assert ctx.point_to_source(0, 0) == (left, top)
    else:
        with pytest.raises(OperationError):
            crop(im, params, ctx)


MAX_PIXELS = 50_000_000


def _encoded(size: tuple[int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(out, format=fmt)
    return out.getvalue()


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(16, 3000),
    height=st.integers(16, 3000),
    p=resize_params().filter(lambda p: (p.width or 1) <= 1500 and (p.height or 1) <= 1500),
    turn=st.sampled_from([0, 90]),
)
def test_a_jpeg_resizes_to_the_size_its_source_size_gives(
    width: int, height: int, p: Resize, turn: int
) -> None:
    """A JPEG decoded at 1/2..1/8 scale still gets the output size computed from its own
    size: the same as the same picture as PNG (4000x2667 -> width 200 was 200x134)."""
    steps = [Rotate(degrees=turn), p, Convert(format="png")]
    want = resize_geometry(*((height, width) if turn else (width, height)), p)[0]
    for fmt in ("JPEG", "PNG"):
        source = _encoded((width, height), fmt)
        if want[0] * want[1] > MAX_PIXELS:  # an upscale of a thin strip: refused, not rendered
            with pytest.raises(TooManyPixels):
                render_output(source, steps, max_pixels=MAX_PIXELS)
            continue
        out = render_output(source, steps, max_pixels=MAX_PIXELS)
        assert (out.width, out.height) == want, fmt


def test_the_reported_case_is_exact() -> None:
    out = render_output(_encoded((4000, 2667), "JPEG"), [Resize(width=200)], max_pixels=50_000_000)
    assert (out.width, out.height) == (200, 133)

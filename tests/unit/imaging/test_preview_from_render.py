"""The source's preview made from the render's own decode is the preview ``make_preview``
makes from the source: same size, same picture (only the draft scale may differ), upright."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageStat

from pixtools.imaging import render_output
from pixtools.imaging.preview import make_preview
from pixtools.jobs.previews import SourcePreview
from pixtools.jobspec.ops import Convert, Resize
from tests.support.images import encode, exif_rotated_jpeg, photo

MAX_PIXELS = 50_000_000


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im.convert("RGB")


def from_render(source: bytes, width: int) -> bytes | None:
    hook = SourcePreview(exists=False)
    steps = [Resize(width=width), Convert(format="webp")]
    render_output(source, steps, max_pixels=MAX_PIXELS, on_decoded=hook.from_decoded)
    return hook.data


@settings(max_examples=30, deadline=None)
@given(
    fmt=st.sampled_from(["JPEG", "PNG", "WEBP"]),
    width=st.integers(40, 2400),
    height=st.integers(40, 1800),
    target=st.integers(16, 1600),
)
def test_the_render_s_source_preview_is_make_preview_s(
    fmt: str, width: int, height: int, target: int
) -> None:
    source = encode(photo((width, height)), fmt)
    made = from_render(source, target)
    reference = opened(make_preview(source, max_pixels=MAX_PIXELS))
    if made is None:  # the render decoded the JPEG below a tile's size: made the usual way
        assert fmt == "JPEG" and target < 320
        return
    ours = opened(made)
    assert ours.size == reference.size
    diff = ImageStat.Stat(ImageChops.difference(ours, reference)).mean
    assert max(diff) < 6, diff  # the same picture; the draft scale and WebP noise apart


def test_an_exif_rotated_source_s_preview_is_upright() -> None:
    upright = photo((600, 400))
    made = from_render(exif_rotated_jpeg(upright, 6), 500)
    assert made is not None
    assert opened(made).size == (320, 213)


def test_a_job_that_has_its_source_preview_makes_none() -> None:
    hook = SourcePreview(exists=True)
    steps = [Resize(width=100), Convert(format="webp")]
    render_output(
        encode(photo(), "PNG"), steps, max_pixels=MAX_PIXELS, on_decoded=hook.from_decoded
    )
    assert hook.data is None

"""Hostile inputs: pixel caps from the header before any decode, bomb warnings as errors,
truncated and corrupt files as our errors."""

from __future__ import annotations

import io
import time
import warnings

import pytest
from PIL import Image

from pixtools.imaging import CorruptImage, ImageErrorKind, TooManyPixels, probe, render_output
from pixtools.imaging.errors import ImageError, OperationError, UnsupportedFormat
from pixtools.imaging.limits import apply_decoder_limits
from pixtools.jobspec.ops import Convert, Resize
from tests.support.images import HUGE_HEADERS, MAX_PIXELS, encode, photo


@pytest.mark.parametrize("fmt", sorted(HUGE_HEADERS))
def test_header_declaring_too_many_pixels_is_422_before_decode(fmt: str) -> None:
    data = HUGE_HEADERS[fmt]()
    started = time.perf_counter()
    with pytest.raises(TooManyPixels) as caught:
        probe(data, max_pixels=MAX_PIXELS)
    assert caught.value.kind is ImageErrorKind.TOO_LARGE
    with pytest.raises(TooManyPixels):
        render_output(data, [Resize(width=10)], max_pixels=MAX_PIXELS)
    # Decoding billions of pixels would take far longer (and the data is not there).
    assert time.perf_counter() - started < 2


def test_pixel_cap_counts_every_frame() -> None:
    frames = [Image.new("RGB", (100, 100), (80 * i, 0, 0)) for i in range(3)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert probe(gif, max_pixels=30_000).frames == 3
    with pytest.raises(TooManyPixels, match="3 frames"):
        probe(gif, max_pixels=29_999)
    # A render decodes frame 0 only and does not count again (#14.8: counted once, at
    # submit): 10,000 pixels are within the limit whatever follows them.
    out = render_output(gif, [Convert(format="png")], max_pixels=29_999)
    assert (out.width, out.height) == (100, 100)
    with pytest.raises(TooManyPixels):
        render_output(gif, [Convert(format="png")], max_pixels=9_999)


def test_pillow_bomb_warning_is_an_error_at_the_configured_limit() -> None:
    data = encode(Image.new("RGB", (40, 40)), "PNG")
    apply_decoder_limits(1_000)
    try:
        assert Image.MAX_IMAGE_PIXELS == 1_000
        with warnings.catch_warnings():
            # Whatever the caller's filters: our filter is installed process-wide.
            apply_decoder_limits(1_000)
            with pytest.raises(Image.DecompressionBombWarning):
                Image.open(__import__("io").BytesIO(data))
    finally:
        apply_decoder_limits(MAX_PIXELS)
    with pytest.raises(TooManyPixels):
        render_output(data, [Convert(format="png")], max_pixels=1_000)


def test_bad_header_is_corrupt_at_probe() -> None:
    png = encode(Image.new("RGB", (16, 16)), "PNG")
    broken = png[:8] + b"\x00\x00\x00\x0dIHDX" + png[16:]
    with pytest.raises(CorruptImage) as caught:
        probe(broken, max_pixels=MAX_PIXELS)
    assert caught.value.kind is ImageErrorKind.CORRUPT


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "BMP", "WEBP", "AVIF"])
def test_truncated_body_is_corrupt_at_probe_and_at_render(fmt: str) -> None:
    # Refused at submit (422) since the container is checked; the worker checks it again.
    data = encode(photo((256, 192)), fmt)
    cut = data[: len(data) // 2]
    with pytest.raises(CorruptImage, match="corrupt or truncated"):
        probe(cut, max_pixels=MAX_PIXELS)
    with pytest.raises(CorruptImage, match="corrupt or truncated"):
        render_output(cut, [Resize(width=64), Convert(format="png")], max_pixels=MAX_PIXELS)


def test_zero_dimension_header_is_corrupt() -> None:
    from tests.support.images import huge_bmp

    with pytest.raises(CorruptImage):
        probe(huge_bmp(0, 16), max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("error", [UnsupportedFormat, TooManyPixels, CorruptImage, OperationError])
def test_no_engine_message_carries_an_object_repr(error: type[ImageError]) -> None:
    """#14.17: whatever library text an engine error quotes (a step's exception, a decoder's
    complaint), a Python object's repr and its address never reach the job or the 422."""
    quoted = f"step 0 (watermark) failed: cannot use {io.BytesIO()!r} with {object()!r}"
    message = str(error(quoted))
    assert " at 0x" not in message and "<_io" not in message, message
    assert message.startswith("step 0 (watermark) failed: cannot use the image data")

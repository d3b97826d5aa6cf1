"""Watermark text is drawn once, at its final size (a 200-character line at size 1 drew a
layer of gigabytes first); a step's own failure is permanent and names the step; a PNG's
transparent key colour (tRNS on RGB or grey) is transparency in every output format."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from PIL import Image

from pixtools.imaging import ImageError, OperationError, render_output
from pixtools.imaging.ops.watermark import _text_box, fitted_size
from pixtools.jobspec.job import SpecError, parse_spec
from pixtools.jobspec.ops import Convert, OutputFormat, Watermark
from tests.support.images import MAX_PIXELS, encode

_PEAK_SCRIPT = """
import io, resource, sys
from PIL import Image
from pixtools.imaging import render_output
from pixtools.jobspec.ops import Convert, OutputFormat, Watermark
src = io.BytesIO()
Image.new("RGB", (6000, 4000), (40, 60, 80)).save(src, format="PNG", compress_level=1)
out = render_output(
    src.getvalue(), [Watermark(text=sys.argv[1], size=float(sys.argv[2])), Convert(format="png")],
    max_pixels=50_000_000,
)
print(out.width, out.height, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("W" * 200, 1.0),
        ("(c) 2026 Example Photography Ltd. All rights reserved. www.example.com", 0.2),
    ],
)
def test_long_watermark_text_on_a_large_photo_fits_in_bounded_memory(
    text: str, size: float
) -> None:
    """6000x4000 RGB is 72 MB; the whole render stays under 600 MB of peak RSS (drawn at
    full size first, the 200 W line reached 5.3 GB and failed)."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, text, str(size)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, peak_kib = (int(v) for v in done.stdout.split())
    assert (width, height) == (6000, 4000)
    assert peak_kib < 600 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"


def test_fitted_size_is_the_largest_that_fits() -> None:
    room = (3000, 400)
    size = fitted_size("W" * 200, 6000, room)
    width, height = _text_box("W" * 200, size)
    assert width <= room[0] and height <= room[1]
    assert _text_box("W" * 200, size + 2)[0] > room[0]  # (hinting allows one step of slack)


def test_control_characters_in_watermark_text_are_refused_at_submit() -> None:
    for text in ("line\nbreak", "tab\there", "nul\x00"):
        spec = {"outputs": [{"name": "w", "steps": [{"op": "watermark", "text": text}]}]}
        with pytest.raises(SpecError) as caught:
            parse_spec(__import__("json").dumps(spec))
        assert caught.value.field == "outputs[0].steps[0].text"
        assert caught.value.status == 400


def test_a_failing_step_is_a_permanent_error_naming_it() -> None:
    """A spec stored before the submit check (or text the layout engine refuses) fails as an
    OperationError naming the step, which the worker records once and never retries."""
    src = encode(Image.new("RGB", (200, 100)), "PNG")
    try:
        out = render_output(
            src, [Watermark(text="a\nb"), Convert(format="png")], max_pixels=MAX_PIXELS
        )
    except ImageError as exc:  # raqm refuses a newline: "raqm_layout() failed"
        assert isinstance(exc, OperationError)
        assert "step 0 (watermark)" in str(exc)
    else:  # Pillow's basic layout (no raqm, e.g. pillow-simd) draws it
        assert (out.width, out.height) == (200, 100)


def _keyed(mode: str) -> bytes:
    if mode == "RGB":
        im = Image.new("RGB", (32, 32), (200, 30, 30))
        im.paste((0, 255, 0), (0, 0, 16, 32))
        key: object = (0, 255, 0)
    else:
        im = Image.new("L", (32, 32), 200)
        im.paste(7, (0, 0, 16, 32))
        key = 7
    out = io.BytesIO()
    im.save(out, format="PNG", transparency=key)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("fmt", ["png", "webp", "avif", "gif", "tiff"])
def test_a_transparent_key_colour_is_transparent_in_the_output(
    mode: str, fmt: OutputFormat
) -> None:
    out = render_output(_keyed(mode), [Convert(format=fmt)], max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        rgba = im.convert("RGBA")
    assert rgba.getpixel((4, 4))[3] == 0  # type: ignore[index]
    assert rgba.getpixel((28, 4))[3] == 255  # type: ignore[index]


def test_a_key_colour_flattens_to_white_in_jpeg() -> None:
    out = render_output(_keyed("RGB"), [Convert(format="jpeg")], max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert min(im.convert("RGB").getpixel((4, 4))) > 240  # type: ignore[arg-type]

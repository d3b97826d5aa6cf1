"""Orientation x format x library: for every EXIF orientation, in every format that carries
one, the output is the source as the installed image library shows it upright, and the
size reported at submit is that upright size.

"Upright" is defined by the library, not by us: ``ImageOps.exif_transpose`` of what it
decodes. Pillow 13 turns TIFFs itself as it opens them, pillow-simd 12.1 does not; CI runs
this file under both, so the library axis is covered by running it in each environment.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageOps

from pixtools.imaging import probe, render_output
from pixtools.imaging.decode import avif_codec, library_uprights
from pixtools.jobspec.ops import Convert

MAX_PIXELS = 50_000_000
ORIENTED_FORMATS = ["JPEG", "PNG", "WEBP", "TIFF", *(["AVIF"] if avif_codec() else [])]


def _sample(size: tuple[int, int], fmt: str, orientation: int) -> bytes:
    width, height = size
    im = Image.new("RGB", size, (255, 255, 255))
    im.paste((255, 0, 0), (0, 0, width // 2, height // 2))
    im.paste((0, 160, 0), (width // 2, 0, width, height // 2))
    im.paste((0, 0, 255), (0, height // 2, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    options: dict[str, object] = {"exif": exif}
    if fmt == "WEBP":
        options["lossless"] = True
    im.save(out, format=fmt, **options)
    return out.getvalue()


def _library_upright(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
        return upright.convert("RGB")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(ORIENTED_FORMATS),
    orientation=st.integers(min_value=1, max_value=8),
    width=st.integers(min_value=2, max_value=40),
    height=st.integers(min_value=2, max_value=40),
)
def test_output_is_what_the_library_shows_upright(
    fmt: str, orientation: int, width: int, height: int
) -> None:
    data = _sample((width, height), fmt, orientation)
    expected = _library_upright(data)

    info = probe(data, max_pixels=MAX_PIXELS)
    assert (info.width, info.height) == expected.size

    out = render_output(data, [Convert(format="png")], max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == expected.size
    with Image.open(io.BytesIO(out.data or b"")) as got:
        assert ImageChops.difference(got.convert("RGB"), expected).getbbox() is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_is_turned_exactly_once(orientation: int) -> None:
    """The issue's case by name: 14 hand-made TIFFs came out turned twice on Pillow 13."""
    data = _sample((30, 20), "TIFF", orientation)
    expected = _library_upright(data)
    # Stored 30x20: a quarter-turn tag (5..8) shows it 20x30, whichever library turns it.
    assert expected.size == ((20, 30) if orientation in (5, 6, 7, 8) else (30, 20))
    out = render_output(data, [Convert(format="png")], max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(out.data or b"")) as got:
        assert ImageChops.difference(got.convert("RGB"), expected).getbbox() is None
    info = probe(data, max_pixels=MAX_PIXELS)
    assert (info.width, info.height) == (out.width, out.height) == expected.size


def test_the_library_behaviour_is_detected_not_assumed() -> None:
    """Whether the library turns TIFFs is read from what it does with a tagged sample."""
    with Image.open(io.BytesIO(_sample((4, 2), "TIFF", 6))) as opened:
        assert library_uprights("tiff") == (opened.size == (2, 4))
    assert library_uprights("png") is False  # no Pillow turns PNGs on open

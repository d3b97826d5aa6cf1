"""A presigned upload is probed on its first bytes only (``probe_head``): for every format,
size and orientation it must report what the full probe of the whole file reports, and a
file cut anywhere inside its header must be refused (never a wrong size)."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixtools.imaging import ImageError, probe
from pixtools.imaging.decode import avif_codec
from pixtools.jobs.sources import probe_head

MAX_PIXELS = 50_000_000
FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", *(["AVIF"] if avif_codec() else [])]


def sample(size: tuple[int, int], fmt: str, orientation: int) -> bytes:
    im = Image.new("RGB", size, (200, 30, 90))
    out = io.BytesIO()
    options: dict[str, object] = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "AVIF"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif
    im.save(out, format=fmt, **options)
    return out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(FORMATS),
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    orientation=st.integers(1, 8),
)
def test_the_head_says_what_the_whole_file_says(
    fmt: str, width: int, height: int, orientation: int
) -> None:
    data = sample((width, height), fmt, orientation)
    whole = probe(data, max_pixels=MAX_PIXELS)
    head = probe_head(data, max_pixels=MAX_PIXELS)
    assert (head.format, head.content_type, head.width, head.height) == (
        whole.format,
        whole.content_type,
        whole.width,
        whole.height,
    )


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(["JPEG", "PNG", "WEBP", "GIF", "BMP"]), cut=st.integers(0, 20))
def test_a_header_cut_short_is_refused(fmt: str, cut: int) -> None:
    data = sample((64, 48), fmt, 1)
    with pytest.raises(ImageError):
        probe_head(data[:cut], max_pixels=MAX_PIXELS)


def test_the_pixel_limit_applies_to_the_head() -> None:
    data = sample((300, 200), "PNG", 1)
    with pytest.raises(ImageError, match="limit"):
        probe_head(data, max_pixels=300 * 200 - 1)

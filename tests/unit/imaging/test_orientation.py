"""The source is auto-oriented from EXIF first, for all 8 orientation values."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixtools.imaging import probe, render_output
from pixtools.jobspec.ops import Convert, Resize
from tests.support.images import MAX_PIXELS, exif_rotated_jpeg, quadrants

UPRIGHT_CORNERS = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (255, 255, 255)}


def _corners(im: Image.Image) -> dict[str, tuple[int, ...]]:
    w, h = im.size
    px = im.convert("RGB").load()
    assert px is not None
    points = {"tl": (w // 4, h // 4), "tr": (3 * w // 4, h // 4)}
    points |= {"bl": (w // 4, 3 * h // 4), "br": (3 * w // 4, 3 * h // 4)}
    return {k: tuple(px[p]) for k, p in points.items()}  # type: ignore[arg-type]


def _close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 24 for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_first(orientation: int) -> None:
    data = exif_rotated_jpeg(quadrants((64, 32)), orientation)
    info = probe(data, max_pixels=MAX_PIXELS)
    assert (info.width, info.height) == (64, 32)

    out = render_output(data, [Convert(format="png")], max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == (64, 32)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert im.size == (64, 32)
        corners = _corners(im)
        assert "exif" not in im.info
    for name, colour in UPRIGHT_CORNERS.items():
        assert _close(corners[name], colour), (name, corners[name])


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_resize_box_applies_to_the_upright_image(orientation: int) -> None:
    data = exif_rotated_jpeg(quadrants((640, 320)), orientation)
    out = render_output(data, [Resize(width=100), Convert(format="png")], max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == (100, 50)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        corners = _corners(im)
    for name, colour in UPRIGHT_CORNERS.items():
        assert _close(corners[name], colour), (name, corners[name])

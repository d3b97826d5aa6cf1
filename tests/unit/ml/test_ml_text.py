"""PP-OCR on rendered and scanned text: the words come back, in order, where they are."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image
from tests.support import samples

from pixtools.ml import text

pytestmark = pytest.mark.ml

LINES = ["PixTools reads text", "Invoice 2024-117: $42.50"]


def test_reads_rendered_text() -> None:
    page = text.read(samples.text_image(LINES))
    assert page.text == "\n".join(LINES)
    assert [line.text for line in page.lines] == LINES
    assert all(line.score > 0.9 for line in page.lines)


def test_line_boxes_surround_their_text() -> None:
    img = samples.text_image(LINES, size=36, margin=24)
    first, second = text.read(img).lines
    for line, top in ((first, 24), (second, 24 + round(36 * 1.6))):
        x0, y0, x1, y1 = line.box
        assert 10 <= x0 <= 30
        assert top - 10 <= y0 <= top + 12
        assert y1 - y0 < 60
        assert x1 <= img.width


@pytest.mark.parametrize("angle", [7, -7, 90, 180, 270])
def test_reads_rotated_text_in_order(angle: int) -> None:
    img = samples.text_image(LINES).rotate(angle, expand=True, fillcolor="white")
    assert text.read(img).text == "\n".join(LINES)


def test_reads_light_text_on_dark_and_transparent_backgrounds() -> None:
    dark = samples.text_image(["White on navy 77"], ink=(250, 250, 250), paper=(20, 30, 90))
    assert text.read(dark).text == "White on navy 77"
    ink = samples.text_image(["Logo text"]).convert("L")
    transparent = Image.new("RGBA", ink.size, (0, 0, 0, 0))
    transparent.putalpha(Image.eval(ink, lambda v: 255 - v))  # black glyphs, clear paper
    assert text.read(transparent).text == "Logo text"


def test_large_sources_are_read_and_mapped_back() -> None:
    img = samples.scaled(samples.text_image(["Scaled up to 3000 px"]), 3000)
    page = text.read(img)
    assert page.text == "Scaled up to 3000 px"
    x0, _, x1, _ = page.lines[0].box
    assert x0 < 250
    assert x1 > 2700


def test_reads_a_scanned_page(sample: Callable[[str], Image.Image]) -> None:
    page = text.read(sample("page"))
    assert page.text.splitlines()[0] == "Region-based segmentation"
    assert "markers = np.zeros_like(coins)" in page.text
    assert len(page.lines) == 7


def test_min_score_filters_lines() -> None:
    img = samples.text_image(LINES)
    assert text.read(img, min_score=1.0).lines == []


@pytest.mark.parametrize("size", [(1, 1), (600, 400)])
def test_blank_images_have_no_text(size: tuple[int, int]) -> None:
    page = text.read(Image.new("RGB", size, "white"))
    assert page.lines == []
    assert page.text == ""


def test_a_photo_without_text_has_none(sample: Callable[[str], Image.Image]) -> None:
    # Textures can still produce a low-confidence character (see docs/ml.md); a portrait doesn't.
    assert text.read(sample("astronaut")).text == ""


def test_ctc_merges_repeats_and_drops_blanks() -> None:
    import numpy as np

    charset = ["", "a", "b", " "]
    steps = [1, 1, 0, 1, 2, 2, 0, 0, 3, 2]
    probs = np.full((len(steps), 4), 0.01, dtype=np.float32)
    probs[np.arange(len(steps)), steps] = 0.97
    decoded, score = text.ctc_decode(probs, charset)
    assert decoded == "aab b"
    assert score == pytest.approx(0.97)

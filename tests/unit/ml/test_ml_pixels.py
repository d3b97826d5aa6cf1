"""Model-ready pixels: the planar tensor equals numpy's straightforward reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pixtools.ml import pixels, text

pytestmark = pytest.mark.ml


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    pad_w=st.integers(0, 9),
    pad_h=st.integers(0, 9),
    bgr=st.booleans(),
    scale=st.sampled_from([1.0, 1 / 127.5, 1 / 255]),
    offset=st.sampled_from([0.0, -1.0]),
    seed=st.integers(0, 2**16),
)
def test_planar_matches_the_transpose_reference(
    width: int,
    height: int,
    pad_w: int,
    pad_h: int,
    bgr: bool,
    scale: float,
    offset: float,
    seed: int,
) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    img = Image.fromarray(rgb, "RGB")
    size = (width + pad_w, height + pad_h)

    tensor = pixels.planar(img, scale=scale, offset=offset, bgr=bgr, size=size)

    expected = np.zeros((1, 3, size[1], size[0]), dtype=np.float32)
    channels = rgb[:, :, ::-1] if bgr else rgb
    expected[0, :, :height, :width] = channels.transpose(2, 0, 1).astype(np.float32) * np.float32(
        scale
    ) + np.float32(offset)
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, expected, rtol=0, atol=1e-6)


def test_planar_converts_other_modes_to_rgb_first() -> None:
    grey = Image.new("L", (3, 2), 200)
    tensor = pixels.planar(grey)
    assert tensor.shape == (1, 3, 2, 3)
    assert (tensor == 200).all()
    rgba = Image.new("RGBA", (2, 2), (0, 0, 0, 0))  # transparent: composited onto white
    assert (pixels.planar(rgba) == 255).all()


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 30), min_size=1, max_size=4),
    height=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_text_batches_normalise_like_the_reference(
    widths: list[int], height: int, seed: int
) -> None:
    batch_w = max(widths)
    tensor = np.random.default_rng(seed).integers(
        0, 256, (len(widths), height, batch_w, 3), dtype=np.uint8
    )
    expected = tensor[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
    for row, w in enumerate(widths):
        expected[row, :, :, w:] = 0.0
    np.testing.assert_allclose(text._normalise(tensor, widths), expected, rtol=0, atol=1e-6)

"""Connected components, hulls and rotated rectangles against brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pixtools.ml import geometry

pytestmark = pytest.mark.ml


def _flood_labels(mask: np.ndarray) -> np.ndarray:
    """Reference 8-connected labelling by flood fill."""
    labels = -np.ones(mask.shape, dtype=int)
    count = 0
    h, w = mask.shape
    for y, x in zip(*np.nonzero(mask), strict=True):
        if labels[y, x] >= 0:
            continue
        stack = [(y, x)]
        labels[y, x] = count
        while stack:
            cy, cx = stack.pop()
            for ny in range(cy - 1, cy + 2):
                for nx in range(cx - 1, cx + 2):
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and labels[ny, nx] < 0:
                        labels[ny, nx] = count
                        stack.append((ny, nx))
        count += 1
    return labels


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_run_labels_match_flood_fill(mask: np.ndarray) -> None:
    runs = geometry.runs_of(mask)
    labels, count = geometry.label_runs(runs, mask.shape[1])
    reference = _flood_labels(mask)
    assert count == (reference.max() + 1 if mask.any() else 0)
    # Same partition: a bijection between run labels and reference labels.
    pairs = {
        (int(a), int(reference[r, s])) for a, r, s in zip(labels, runs.row, runs.start, strict=True)
    }
    assert len(pairs) == count
    # Runs cover exactly the set pixels.
    covered = np.zeros_like(mask)
    for r, s, e in zip(runs.row, runs.start, runs.end, strict=True):
        covered[r, s:e] = True
    assert np.array_equal(covered, mask)


def test_dilate_2x2_grows_down_and_right() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 1] = True
    grown = geometry.dilate2x2(mask)
    assert set(zip(*np.nonzero(grown), strict=True)) == {(1, 1), (1, 2), (2, 1), (2, 2)}


@pytest.mark.parametrize("angle", [0.0, 12.0, 33.0, 45.0, 80.0, 90.0, -20.0])
def test_min_area_rect_recovers_a_rotated_rectangle(angle: float) -> None:
    theta = math.radians(angle)
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-u[1], u[0]])
    grid = np.array([(a, b) for a in np.linspace(-30, 30, 25) for b in np.linspace(-8, 8, 9)])
    points = 100 + grid[:, :1] * u + grid[:, 1:] * v
    rect = geometry.min_area_rect(points)
    assert {round(rect.width, 6), round(rect.height, 6)} == {60.0, 16.0}
    assert (rect.cx, rect.cy) == pytest.approx((100, 100))
    corners = rect.corners()
    assert corners[0, 1] <= corners[3, 1]  # top-left above bottom-left
    assert corners[0, 0] <= corners[1, 0] or angle in (90.0,)


def test_min_area_rect_encloses_every_point() -> None:
    rng = np.random.default_rng(7)
    points = rng.normal(size=(300, 2)) @ np.array([[4.0, 1.0], [0.0, 0.7]])
    rect = geometry.min_area_rect(points)
    d = points - (rect.cx, rect.cy)
    along = np.abs(d @ (rect.ux, rect.uy))
    across = np.abs(d @ (-rect.uy, rect.ux))
    assert (along <= rect.width / 2 + 1e-9).all()
    assert (across <= rect.height / 2 + 1e-9).all()


def test_expanded_rect_grows_every_side() -> None:
    rect = geometry.Rect(10, 10, 20, 4, 1.0, 0.0).expanded(3)
    assert (rect.width, rect.height) == (26, 10)
    assert rect.corners().tolist() == [[-3, 5], [23, 5], [23, 15], [-3, 15]]


def test_mean_inside_averages_only_the_rectangle() -> None:
    values = np.zeros((20, 20), dtype=np.float32)
    values[5:10, 4:15] = 1.0
    rect = geometry.Rect(9, 7, 10, 4, 1.0, 0.0)  # x 4..14, y 5..9
    assert geometry.mean_inside(values, rect) == pytest.approx(1.0)
    assert geometry.mean_inside(values, geometry.Rect(9, 15, 10, 4, 1.0, 0.0)) == 0.0

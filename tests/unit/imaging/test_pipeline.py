"""render_output: ops resolved through the registry, analysis-only outputs, the DCT-domain
shrink for JPEG sources, and ctx.to_source through it all."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from pixtools.imaging import StepContext, pipeline, render_output
from pixtools.imaging.pipeline import draft_size
from pixtools.jobspec.ops import (
    Blur,
    Convert,
    Crop,
    DetectFaces,
    Flip,
    Grayscale,
    KeepMetadata,
    Moderate,
    Resize,
    Rotate,
)
from tests.support.images import MAX_PIXELS, encode, exif_rotated_jpeg, photo


@pytest.fixture
def fake_ml(monkeypatch: pytest.MonkeyPatch) -> list[StepContext]:
    """Stand-ins for the ML analysis ops, resolved like the real ones (same signature)."""
    seen: list[StepContext] = []

    def detect_faces(im: Image.Image, params: Any, ctx: StepContext) -> Image.Image:
        seen.append(ctx)
        ctx.result["faces"] = [{"box": ctx.box_to_source((0, 0, im.width, im.height)), "score": 1}]
        return im

    def moderate(im: Image.Image, params: Any, ctx: StepContext) -> Image.Image:
        ctx.result.update(nsfw=0.1, sfw=0.9)
        return im

    monkeypatch.setitem(pipeline._resolved, "detect_faces", detect_faces)
    monkeypatch.setitem(pipeline._resolved, "moderate", moderate)
    return seen


def test_analysis_only_output_stores_no_image(
    photo_jpeg: bytes, fake_ml: list[StepContext]
) -> None:
    out = render_output(photo_jpeg, [DetectFaces(), Moderate()], max_pixels=MAX_PIXELS)
    assert out.data is None and out.format is None and out.width is None
    assert out.result == {"faces": [{"box": [0, 0, 640, 480], "score": 1}], "nsfw": 0.1, "sfw": 0.9}


def test_analysis_after_geometry_reports_source_pixels(fake_ml: list[StepContext]) -> None:
    data = exif_rotated_jpeg(photo((800, 600)), 6)  # stored 600x800, upright 800x600
    out = render_output(
        data,
        [
            Resize(width=400),
            Crop(left=100, top=50, width=200, height=100),
            Flip(direction="horizontal"),
            DetectFaces(),
            Convert(format="png"),
        ],
        max_pixels=MAX_PIXELS,
    )
    assert (out.width, out.height) == (200, 100)
    assert out.result is not None
    assert out.result["faces"][0]["box"] == pytest.approx([200, 100, 600, 300], abs=0.6)


def test_steps_run_in_order_through_the_registry(photo_jpeg: bytes) -> None:
    out = render_output(
        photo_jpeg,
        [Rotate(degrees=90), Grayscale(), Resize(width=120), Convert(format="png")],
        max_pixels=MAX_PIXELS,
    )
    assert (out.width, out.height) == (120, 160)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert im.mode == "L"


def test_each_stage_is_timed_through_the_hook(photo_jpeg: bytes) -> None:
    seen: list[tuple[str, float]] = []
    render_output(
        photo_jpeg,
        [Grayscale(), Resize(width=120), Convert(format="png")],
        max_pixels=MAX_PIXELS,
        on_step=lambda name, seconds: seen.append((name, seconds)),
    )
    assert [name for name, _ in seen] == ["decode", "grayscale", "resize", "convert", "encode"]
    assert all(seconds >= 0 for _, seconds in seen)


def test_ml_ops_are_not_imported_by_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pixtools.imaging as i, pixtools.imaging.ops, pixtools.imaging.pipeline;"
        "assert not any(m.startswith(('pixtools.ml', 'onnxruntime', 'pixtools.store',"
        " 'pixtools.api', 'pixtools.worker', 'pixtools.observability')) for m in sys.modules),"
        " sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the DCT-domain shrink ---------------------------------------------------------------


def test_draft_is_planned_only_when_the_pipeline_starts_by_shrinking() -> None:
    size = (4000, 3000)
    assert draft_size([Resize(width=800), Convert(format="webp")], size) == (800, 600)
    assert draft_size([KeepMetadata(), Flip(direction="vertical"), Resize(width=400)], size) == (
        400,
        300,
    )
    assert draft_size([Rotate(degrees=90), Resize(width=300)], size) == (400, 300)  # upright
    cover = draft_size([Resize(width=200, height=200, fit="cover")], size)
    assert cover == (267, 200)
    assert draft_size([Resize(width=4000)], size) is None  # no shrink
    assert draft_size([Blur(sigma=2), Resize(width=100)], size) is None  # blur must see it all
    assert draft_size([Crop(left=0, top=0, width=10, height=10)], size) is None
    assert draft_size([Convert(format="png")], size) is None


def test_jpeg_drafted_output_matches_the_full_decode() -> None:
    src = photo((2400, 1800), seed=5)
    data = encode(src, "JPEG", quality=92)
    out = render_output(data, [Resize(width=300), Convert(format="png")], max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        fast = im.convert("RGB")
    with Image.open(io.BytesIO(data)) as full:
        naive = full.convert("RGB").resize((300, 225), Image.Resampling.LANCZOS)
    assert fast.size == naive.size
    diff = ImageStat.Stat(ImageChops.difference(fast, naive)).mean
    assert max(diff) < 2.0  # same picture; only rounding-level differences


@pytest.mark.parametrize("orientation", [1, 6])
def test_drafted_decode_still_maps_to_source_pixels(
    orientation: int, fake_ml: list[StepContext]
) -> None:
    data = exif_rotated_jpeg(photo((3200, 2400)), orientation)
    render_output(data, [Resize(width=200), DetectFaces()], max_pixels=MAX_PIXELS)
    ctx = fake_ml[-1]
    assert ctx.source_size == (3200, 2400)
    assert ctx.box_to_source((0, 0, 200, 150)) == pytest.approx([0, 0, 3200, 2400], abs=0.6)


def test_pipeline_does_not_copy_when_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(photo((64, 48)), "PNG")
    calls: list[str] = []
    original = Image.Image.copy

    def counting_copy(self: Image.Image) -> Image.Image:
        calls.append("copy")
        return original(self)

    monkeypatch.setattr(Image.Image, "copy", counting_copy)
    render_output(
        data, [Resize(width=640), Rotate(degrees=0), Convert(format="png")], max_pixels=MAX_PIXELS
    )
    assert calls == []


def test_draft_for_analysis_keeps_each_side_at_least_what_the_ops_look_at() -> None:
    from pixtools.jobspec.ops import DetectFaces, Moderate, Ocr

    size = (4000, 3000)
    assert draft_size([Moderate()], size) == (256, 256)
    assert draft_size([DetectFaces(), Moderate()], size) == (1600, 1600)
    assert draft_size([Moderate()], (4000, 200)) == (256, 200)  # never below a short side
    assert draft_size([Moderate()], (200, 100)) is None  # nothing to gain
    assert draft_size([Ocr()], size) is None  # reads line crops at full resolution
    assert draft_size([Moderate(), Ocr()], size) is None
    assert draft_size([Resize(width=800), Moderate()], size) == (800, 600)

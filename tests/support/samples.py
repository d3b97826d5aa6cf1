"""Sample images for the ML tests, the benchmark and smoke checks.

Real photographs come from the data files of scikit-image (installed for development only,
without its dependencies: it is read from disk, never imported). Text images are rendered with
a FreeType font, so OCR sees real glyph shapes.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

#: Where the astronaut's (Eileen Collins') face is in ``astronaut()``: CenterFace finds about
#: (182, 58, 270, 178); a correct detection lies inside this box and covers most of it.
ASTRONAUT_FACE_REGION = (165, 30, 290, 195)


class SampleUnavailableError(LookupError):
    """The package that ships the sample photo is not installed."""


def _skimage_data(name: str) -> Image.Image:
    try:
        dist = importlib.metadata.distribution("scikit-image")
    except importlib.metadata.PackageNotFoundError as exc:
        raise SampleUnavailableError(
            "sample photos need scikit-image's data files: "
            "pip install --no-deps scikit-image (scripts/install-ml.sh --dev)"
        ) from exc
    path = dist.locate_file(f"skimage/data/{name}")
    with Image.open(str(path)) as img:
        img.load()
        return img


def astronaut() -> Image.Image:
    """A 512x512 RGB portrait photograph with exactly one face (NASA, public domain)."""
    return _skimage_data("astronaut.png").convert("RGB")


def cat() -> Image.Image:
    """A 451x300 RGB photograph of a cat: no human face."""
    return _skimage_data("chelsea.png").convert("RGB")


def coffee() -> Image.Image:
    """A 600x400 RGB photograph of a cup of coffee: no face, no text."""
    return _skimage_data("coffee.png").convert("RGB")


def page() -> Image.Image:
    """A 384x191 greyscale scan of a page of printed English text."""
    return _skimage_data("page.png")


def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled FreeType font (DejaVu Sans subset) at ``size`` pixels."""
    loaded = ImageFont.load_default(size=size)
    if not isinstance(loaded, ImageFont.FreeTypeFont):
        raise SampleUnavailableError("Pillow was built without FreeType: no scalable font")
    return loaded


def text_image(
    lines: Sequence[str],
    *,
    size: int = 36,
    margin: int = 24,
    ink: tuple[int, int, int] = (0, 0, 0),
    paper: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """``lines`` rendered one under another, dark on light, in an RGB image that fits them."""
    face = font(size)
    widths = [math.ceil(face.getbbox(line)[2]) for line in lines]
    line_height = round(size * 1.6)
    img = Image.new("RGB", (max(widths) + 2 * margin, line_height * len(lines) + 2 * margin), paper)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_height), line, font=face, fill=ink)
    return img


def scaled(img: Image.Image, long_side: int) -> Image.Image:
    """``img`` resized (up or down, Lanczos) so that its longer side is ``long_side``."""
    factor = long_side / max(img.size)
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def box_within(box: Sequence[float], region: Sequence[float]) -> bool:
    """Whether ``box`` (x0, y0, x1, y1) lies inside ``region``."""
    return (
        box[0] >= region[0] and box[1] >= region[1] and box[2] <= region[2] and box[3] <= region[3]
    )


def pixel_change(
    before: Image.Image, after: Image.Image, region: Sequence[float]
) -> tuple[float, int]:
    """How ``after`` differs from ``before`` (same size): the mean absolute change of the
    pixels inside ``region`` (x0, y0, x1, y1) and the largest change of any pixel outside it."""
    import numpy as np  # ML extra: only the callers of this check need it

    a = np.asarray(before.convert("RGB"), dtype=np.int16)
    b = np.asarray(after.convert("RGB"), dtype=np.int16)
    if a.shape != b.shape:
        raise ValueError(f"sizes differ: {before.size} and {after.size}")
    diff = np.abs(a - b).max(axis=2)
    x0, y0 = max(0, math.floor(region[0])), max(0, math.floor(region[1]))
    x1, y1 = math.ceil(region[2]), math.ceil(region[3])
    inside = np.zeros(diff.shape, dtype=bool)
    inside[y0:y1, x0:x1] = True
    outside_max = int(diff[~inside].max()) if (~inside).any() else 0
    return float(diff[inside].mean()), outside_max

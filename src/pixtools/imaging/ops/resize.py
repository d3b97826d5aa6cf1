"""``resize``: contain/inside, cover (with gravity, ``smart`` included), fill; no enlarging
unless ``upscale``. The geometry is a pure function of sizes (``resize_geometry``, in
``pixtools.jobspec.sizes`` so the API predicts every output size with the same code)."""

from __future__ import annotations

from PIL import Image, ImageFilter

from pixtools.imaging.context import StepContext
from pixtools.jobspec.ops import Resize
from pixtools.jobspec.sizes import Box, resize_geometry

# Pillow shrinks by an integer factor with reduce() (a fast box average) until the image is
# within REDUCING_GAP times the target, then resamples with Lanczos: same look, a fraction of
# the time on large shrinks.
REDUCING_GAP = 2.0
RESAMPLE = Image.Resampling.LANCZOS
_SMART_SIDE = 256  # detail is scored on a thumbnail at most this large

__all__ = ["resize", "resize_geometry", "smart_region"]


def _best_offset(profile: list[float], window: int) -> int:
    """Start of the window with the most detail; ties go to the one nearest the centre."""
    if window >= len(profile):
        return 0
    centre = (len(profile) - window) / 2
    total = sum(profile[:window])
    best, best_key = 0, (total, -centre)
    for start in range(1, len(profile) - window + 1):
        total += profile[start + window - 1] - profile[start - 1]
        key = (total, -abs(start - centre))
        if key > best_key:
            best, best_key = start, key
    return best


def smart_region(im: Image.Image, region: Box) -> Box:
    """Move a crop region of fixed size to where the image has the most detail (edges)."""
    left, top, right, bottom = region
    rw, rh = right - left, bottom - top
    width, height = im.size
    if rw >= width and rh >= height:
        return region
    scale = min(1.0, _SMART_SIDE / max(width, height))
    sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
    small = im.convert("RGB") if im.mode not in ("RGB", "L") else im
    small = small.resize((sw, sh), Image.Resampling.BOX, reducing_gap=None).convert("L")
    # FIND_EDGES leaves the 1-pixel border unfiltered: score the inside only.
    edges = small.filter(ImageFilter.FIND_EDGES)
    values = edges.tobytes()
    if rw < width:  # the free axis is x: score columns
        profile = [float(sum(values[sw + x : (sh - 1) * sw : sw])) for x in range(sw)]
        profile[0] = profile[-1] = 0.0
        start = _best_offset(profile, max(1, round(rw * scale)))
        left = min(start / scale, width - rw)
        return (left, top, left + rw, bottom)
    profile = [float(sum(values[y * sw + 1 : (y + 1) * sw - 1])) for y in range(sh)]
    profile[0] = profile[-1] = 0.0
    start = _best_offset(profile, max(1, round(rh * scale)))
    top = min(start / scale, height - rh)
    return (left, top, right, top + rh)


def resize(im: Image.Image, p: Resize, ctx: StepContext) -> Image.Image:
    """Scale into the box per ``fit``; returns ``im`` itself when nothing would change.

    The geometry comes from the source's size even when the decoder delivered a smaller
    draft (``ctx.nominal_size``): rounding the draft's size would move the output a pixel.
    """
    nominal = ctx.nominal_size or im.size
    ctx.nominal_size = None
    size, region = resize_geometry(nominal[0], nominal[1], p)
    if nominal != im.size:  # the same region, in the draft's pixels
        sx, sy = im.width / nominal[0], im.height / nominal[1]
        region = (region[0] * sx, region[1] * sy, region[2] * sx, region[3] * sy)
    if p.fit == "cover" and p.gravity == "smart":
        region = smart_region(im, region)
    left, top, right, bottom = region
    if size == im.size and region == (0, 0, im.width, im.height):
        return im
    ctx.compose(((right - left) / size[0], 0.0, left, 0.0, (bottom - top) / size[1], top))
    return im.resize(size, RESAMPLE, box=region, reducing_gap=REDUCING_GAP)

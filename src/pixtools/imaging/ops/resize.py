"""``resize``: contain/inside, cover (with gravity, ``smart`` included), fill; no enlarging
unless ``upscale``. The geometry is a pure function of sizes (``resize_geometry``)."""

from __future__ import annotations

from PIL import Image, ImageFilter

from pixtools.imaging.context import StepContext
from pixtools.spec.ops import Resize

# Pillow shrinks by an integer factor with reduce() (a fast box average) until the image is
# within REDUCING_GAP times the target, then resamples with Lanczos: same look, a fraction of
# the time on large shrinks.
REDUCING_GAP = 2.0
RESAMPLE = Image.Resampling.LANCZOS
_SMART_SIDE = 256  # detail is scored on a thumbnail at most this large

Box = tuple[float, float, float, float]


def resize_geometry(width: int, height: int, p: Resize) -> tuple[tuple[int, int], Box]:
    """Output size and the region of the input it is made from, for an input of that size.

    contain/inside: the largest size inside the box keeping aspect. cover: the box exactly,
    from the largest region of the box's aspect (placed by gravity; ``smart`` is centred
    here and placed by ``resize``). fill: the box exactly, stretched. With one dimension
    given every mode keeps aspect. Without ``upscale`` no axis grows: a box larger than the
    image is first scaled down, keeping its aspect, until it fits.
    """
    full: Box = (0.0, 0.0, float(width), float(height))
    bw, bh = p.width, p.height
    if p.fit in ("contain", "inside") or bw is None or bh is None:
        scales = [s for s in (bw and bw / width, bh and bh / height) if s]
        scale = min(scales)
        if not p.upscale:
            scale = min(scale, 1.0)
        size = (
            bw if bw is not None and scale == bw / width else max(1, round(width * scale)),
            bh if bh is not None and scale == bh / height else max(1, round(height * scale)),
        )
        return size, full
    if not p.upscale:
        k = min(1.0, width / bw, height / bh)
        bw, bh = max(1, min(width, round(bw * k))), max(1, min(height, round(bh * k)))
    if p.fit == "fill":
        return (bw, bh), full
    scale = max(bw / width, bh / height)
    rw, rh = min(float(width), bw / scale), min(float(height), bh / scale)
    left, top = (width - rw) / 2, (height - rh) / 2
    if p.gravity == "north":
        top = 0.0
    elif p.gravity == "south":
        top = height - rh
    elif p.gravity == "west":
        left = 0.0
    elif p.gravity == "east":
        left = width - rw
    return (bw, bh), (left, top, left + rw, top + rh)


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
    """Scale into the box per ``fit``; returns ``im`` itself when nothing would change."""
    size, region = resize_geometry(im.width, im.height, p)
    if p.fit == "cover" and p.gravity == "smart":
        region = smart_region(im, region)
    left, top, right, bottom = region
    if size == im.size and region == (0, 0, im.width, im.height):
        return im
    ctx.compose(((right - left) / size[0], 0.0, left, 0.0, (bottom - top) / size[1], top))
    return im.resize(size, RESAMPLE, box=region, reducing_gap=REDUCING_GAP)

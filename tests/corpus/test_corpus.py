"""The real-world corpus: 600-odd images nobody here made (README.md says where from), of
every accepted format, run through the engine as a submission would be (``probe`` at
submit, then ``render_output``), each compared with the image library's own upright
rendering of the same file.

What is checked, per file:
- the engine accepts the file exactly when the library can decode it (a refusal is an
  ``ImageError`` with a 4xx status, never another exception);
- when both decode, the output has the library's upright size and the same pixels, within
  a small mean difference (colour management and 16-bit scaling differ by design, see
  ``_reference``), composited on white so that hidden colours under alpha do not count.
The few files where the engine deliberately departs from the library are listed in
``DEPARTURES`` with the reason; they are still run and their outcome asserted.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from pixtools.imaging import ImageError, ImageErrorKind, probe, render_output
from pixtools.imaging.color import to_srgb
from pixtools.imaging.decode import avif_codec
from pixtools.jobspec.ops import Convert

# The library as shipped: where AVIF comes from pillow-avif-plugin, it is registered first.
assert avif_codec() is not None
CORPUS = Path(__file__).parent / "pillow"
EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".avif"}
FILES = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in EXTENSIONS)
MAX_PIXELS = 50_000_000
# Mean absolute difference per channel (0..255) allowed between the engine's output and
# the library's rendering: lossless outputs of the same decode differ only by colour
# conversion rounding.
TOLERANCE = 2.0

#: file (relative to CORPUS) -> (what the engine does instead, why)
DEPARTURES: dict[str, tuple[str, str]] = {
    "tiff_wrong_bits_per_sample.tiff": (
        "refused",
        "its strips are declared to end at byte 35,711,600 of an 11,184-byte file; the "
        "library renders whatever it finds, the engine refuses a file that is not whole",
    ),
    "apng/chunk_no_fctl.png": (
        "accepted",
        "its APNG frame sequence is broken after the first frame; the library refuses the "
        "whole file, the engine uses the first frame, which is whole",
    ),
}


def _sixteen_bit(im: Image.Image) -> bool:
    return im.mode in ("I", "F") or im.mode.startswith("I;16")


def _reference(data: bytes) -> Image.Image:
    """The library's own rendering: its decode, upright by ``exif_transpose`` (which does
    nothing where the library already turned the file), as RGBA.

    Two conversions the library leaves to the caller are done the engine's way: 16-bit
    grey is scaled to 8 bits (``convert`` clips it, showing white), and CMYK and Lab pixels
    go to sRGB through their profile, as ``to_srgb`` does (``convert`` is naive). RGB and
    grey keep their profile in a PNG output, so their values are compared as they are.
    """
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
        icc = opened.info.get("icc_profile") or None
    if _sixteen_bit(upright):
        wide = upright if upright.mode in ("I", "F") else upright.convert("I")
        upright = wide.point(lambda v: v * (1 / 257)).convert("L")
    if upright.mode in ("CMYK", "LAB"):
        upright = to_srgb(upright, icc if isinstance(icc, bytes) else None)
    return upright.convert("RGBA")


def _on_white(im: Image.Image) -> Image.Image:
    base = Image.new("RGBA", im.size, (255, 255, 255, 255))
    base.alpha_composite(im)
    return base.convert("RGB")


def _library_decodes(data: bytes) -> Image.Image | None:
    try:
        return _reference(data)
    except Exception:
        return None


def _engine(data: bytes, convert: Convert) -> Image.Image | ImageError:
    try:
        probe(data, max_pixels=MAX_PIXELS)
        out = render_output(data, [convert], max_pixels=MAX_PIXELS)
    except ImageError as exc:
        return exc
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert im.size == (out.width, out.height)
        return im.convert("RGBA")


def test_the_corpus_is_there_and_covers_every_format() -> None:
    suffixes = {p.suffix.lower() for p in FILES}
    assert len(FILES) >= 600
    assert {".jpg", ".png", ".gif", ".webp", ".bmp", ".avif"} <= suffixes
    assert suffixes & {".tif", ".tiff"}


# PNG keeps every decoded value; lossless WebP also shows that transparency (a key colour,
# a palette's transparent entry) reaches a format whose encoder needs it as alpha.
OUTPUTS = [Convert(format="png"), Convert(format="webp", lossless=True)]


@pytest.mark.parametrize("convert", OUTPUTS, ids=lambda c: c.format)
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_the_output_is_the_library_upright_rendering(path: Path, convert: Convert) -> None:
    data = path.read_bytes()
    name = str(path.relative_to(CORPUS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corpus is full of files the library warns on
        reference = _library_decodes(data)
        ours = _engine(data, convert)
    departure = DEPARTURES.get(name, ("", ""))[0]
    if isinstance(ours, ImageError):
        assert ours.kind in ImageErrorKind
        assert reference is None or departure == "refused", f"refused: {ours}"
        return
    assert reference is not None or departure == "accepted", "the library cannot decode it"
    if reference is None:
        return
    assert ours.size == reference.size
    diff = ImageStat.Stat(ImageChops.difference(_on_white(ours), _on_white(reference)))
    worst = max(diff.mean)
    if departure == "differs":
        assert worst > TOLERANCE, "a listed departure now matches: take it off the list"
    else:
        assert worst <= TOLERANCE, f"mean difference {worst:.2f} per channel"

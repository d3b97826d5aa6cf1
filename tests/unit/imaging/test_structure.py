"""A truncated or corrupt upload is refused at submit (``probe``: 422) by structural checks
that decode no pixel; any truncation of a valid file of any format is refused or renders
correctly, never another exception."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin

from pixtools.imaging import (
    CorruptImage,
    ImageError,
    ImageErrorKind,
    TooManyPixels,
    probe,
    render_output,
)
from pixtools.imaging.structure import gif_frames
from pixtools.jobspec.ops import Convert, Resize
from tests.support.images import MAX_PIXELS, encode, photo

FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF"]


def _valid(fmt: str) -> bytes:
    return encode(photo((48, 32)), fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_whole_file_passes(fmt: str) -> None:
    info = probe(_valid(fmt), max_pixels=MAX_PIXELS)
    assert (info.width, info.height) == (48, 32)


def test_jpeg_without_its_end_marker_is_422() -> None:
    data = _valid("JPEG")
    assert data.endswith(b"\xff\xd9")
    with pytest.raises(CorruptImage, match="end-of-image") as caught:
        probe(data[:-2], max_pixels=MAX_PIXELS)
    assert caught.value.kind is ImageErrorKind.CORRUPT


def test_jpeg_padding_after_the_end_marker_is_tolerated() -> None:
    data = _valid("JPEG") + b"\x00" * 300 + b"camera trailer"
    assert probe(data, max_pixels=MAX_PIXELS).width == 48


def test_jpeg_cut_to_634_bytes_declaring_7000x7000_is_refused() -> None:
    """The issue's file: a big JPEG cut to 634 bytes "succeeded" as a grey picture. Even
    with an end marker put back, 634 bytes cannot hold 7000x7000 pixels."""
    big = encode(Image.new("RGB", (7000, 7000), (120, 120, 120)), "JPEG", quality=90)
    cut = big[:634]
    with pytest.raises(CorruptImage):
        probe(cut, max_pixels=MAX_PIXELS)
    patched = cut + b"\xff\xd9"
    with pytest.raises(CorruptImage, match="cannot hold the declared 7000x7000"):
        probe(patched, max_pixels=MAX_PIXELS)
    with pytest.raises(CorruptImage):
        render_output(patched, [Convert(format="png")], max_pixels=MAX_PIXELS)


def test_png_without_iend_is_422() -> None:
    data = _valid("PNG")
    assert data[-8:-4] == b"IEND"
    with pytest.raises(CorruptImage, match="IEND"):
        probe(data[:-12], max_pixels=MAX_PIXELS)


def test_gif_without_its_trailer_is_422() -> None:
    data = _valid("GIF")
    assert data.endswith(b";")
    with pytest.raises(CorruptImage, match="trailer"):
        probe(data[:-1], max_pixels=MAX_PIXELS)


def test_webp_whose_riff_size_exceeds_the_file_is_422() -> None:
    data = bytearray(_valid("WEBP"))
    data[4:8] = struct.pack("<I", len(data) + 100)
    with pytest.raises(CorruptImage, match="corrupt or truncated WEBP"):
        probe(bytes(data), max_pixels=MAX_PIXELS)


def test_tiff_whose_strips_lie_past_the_end_is_422() -> None:
    data = _valid("TIFF")
    im = Image.open(io.BytesIO(data))
    assert isinstance(im, TiffImagePlugin.TiffImageFile)
    ifd_at = struct.unpack_from("<I", data, 4)[0]
    strip_end = max(o + c for o, c in zip(im.tag_v2[273], im.tag_v2[279], strict=True))
    assert ifd_at < strip_end == len(data)  # Pillow writes the directory, then the strips
    with pytest.raises(CorruptImage, match="image data ends at byte"):
        probe(data[:-100], max_pixels=MAX_PIXELS)


def test_bmp_shorter_than_its_header_says_is_422() -> None:
    data = _valid("BMP")
    with pytest.raises(CorruptImage, match="declares"):
        probe(data[:-10], max_pixels=MAX_PIXELS)


def test_avif_whose_box_runs_past_the_end_is_422() -> None:
    data = _valid("AVIF")
    with pytest.raises(CorruptImage, match="box"):
        probe(data[:-5], max_pixels=MAX_PIXELS)


def test_corrupt_header_message_leaks_no_object_repr() -> None:
    png = _valid("PNG")
    broken = png[:8] + b"\x00\x00\x00\x0dIHDX" + png[16:]
    with pytest.raises(CorruptImage) as caught:
        probe(broken, max_pixels=MAX_PIXELS)
    assert "object at 0x" not in str(caught.value) and "BytesIO" not in str(caught.value)


def test_the_pixel_limit_is_stated_as_configured() -> None:
    """Pillow's own bomb message names twice its threshold; ours names the limit."""
    data = encode(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(TooManyPixels) as caught:
        probe(data, max_pixels=40_000)
    assert "40,000" in str(caught.value) and "80000" not in str(caught.value)


def _gif(frames: int, size: tuple[int, int] = (4, 4)) -> bytes:
    images = [Image.new("P", size, i % 200) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], optimize=False)


def test_gif_frames_are_walked_once_and_bounded() -> None:
    data = _gif(50)
    assert gif_frames(data, 1_000) == 50
    assert gif_frames(data, 9) == 10  # stops at the first frame over the bound
    assert probe(data, max_pixels=50 * 16).frames == 50
    with pytest.raises(TooManyPixels, match="frames or more"):
        probe(data, max_pixels=49 * 16)


def test_gif_frame_bound_ignores_the_rest_of_the_file() -> None:
    """A GIF with very many frames is refused after walking only bound + 1 of them: the
    rest of the file may even be garbage (it is never read)."""
    data = _gif(30, (100, 100))
    garbage = data[: len(data) * 2 // 3] + b"\x99" * 1000  # ~20 whole frames, then junk
    with pytest.raises(TooManyPixels):
        probe(garbage, max_pixels=10_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(FORMATS), fraction=st.floats(min_value=0.0, max_value=1.0))
def test_any_truncation_is_refused_or_renders(fmt: str, fraction: float) -> None:
    data = _valid(fmt)
    cut = data[: int(len(data) * fraction)]
    try:
        probe(cut, max_pixels=MAX_PIXELS)
    except ImageError as exc:
        assert exc.kind in ImageErrorKind
        return
    out = render_output(cut, [Resize(width=24), Convert(format="png")], max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == (24, 16)


def test_pillow_never_seeks_through_a_gifs_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted by Pillow, every frame was a seek (700,000 frames: 11 s), at submit and again
    for each output. The real seek is wrapped to count its calls: at submit the walk does
    not seek, and a render decodes frame 0 only."""
    from PIL import GifImagePlugin

    seeks: list[int] = []
    real_seek = GifImagePlugin.GifImageFile._seek

    def counting_seek(self: GifImagePlugin.GifImageFile, frame: int, *args: object) -> None:
        seeks.append(frame)
        real_seek(self, frame, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", counting_seek)
    many = _gif(3000, (10, 10))
    with pytest.raises(TooManyPixels):
        probe(many, max_pixels=100 * 100)  # bound: 100 frames of 10x10
    assert max(seeks, default=0) == 0  # only the first frame is ever read
    seeks.clear()
    few = _gif(50, (10, 10))
    assert probe(few, max_pixels=MAX_PIXELS).frames == 50
    render_output(few, [Convert(format="png")], max_pixels=MAX_PIXELS)
    render_output(few, [Resize(width=5)], max_pixels=MAX_PIXELS)
    assert max(seeks, default=0) == 0


def _image_descriptors(data: bytes) -> list[int]:
    """Where each image descriptor of a GIF starts (its blocks walked by hand)."""

    def skip_sub_blocks(pos: int) -> int:
        while data[pos]:
            pos += data[pos] + 1
        return pos + 1

    flags = data[10]
    pos, found = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0), []
    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            pos = skip_sub_blocks(pos + 2)
            continue
        found.append(pos)
        local = data[pos + 9]
        pos = skip_sub_blocks(pos + 11 + (3 << ((local & 7) + 1) if local & 0x80 else 0))
    return found


def test_a_render_walks_a_gif_only_to_the_end_of_its_first_frame() -> None:
    """The frames are counted once, at submit: each output's render checks that frame 0 is
    whole and reads nothing after it (10 outputs of a 700,000-frame GIF walked it 10 times).
    Shown with a file whose bytes after frame 0 are cut: the submit refuses it, a render
    (which never needs them) does not look at them; a cut inside frame 0 is refused."""
    data = _gif(30, (16, 16))
    first, second = _image_descriptors(data)[:2]
    after_first = data[:second] + b"\x2c\x00"  # cut inside frame 1's descriptor
    with pytest.raises(CorruptImage):
        probe(after_first, max_pixels=MAX_PIXELS)
    out = render_output(after_first, [Convert(format="png")], max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == (16, 16)
    inside_first = data[: first + 14]
    with pytest.raises(CorruptImage):
        render_output(inside_first, [Convert(format="png")], max_pixels=MAX_PIXELS)


def test_a_png_of_many_tiny_chunks_is_checked_at_its_end() -> None:
    png = _valid("PNG")
    iend = png.rindex(b"IEND") - 4
    filler = b"\x00\x00\x00\x00tEXt\x00\x00\x00\x00" * 20_000  # empty, after the data
    many = png[:iend] + filler + png[iend:]
    assert probe(many, max_pixels=MAX_PIXELS).width == 48
    with pytest.raises(CorruptImage, match="IEND"):
        probe(png[:iend] + filler, max_pixels=MAX_PIXELS)

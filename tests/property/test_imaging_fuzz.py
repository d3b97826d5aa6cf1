"""Hostile bytes: mutated images fed to probe, extract_metadata and render_output end as a
success or one of our ImageError subclasses; never another exception, a hang (deadline) or
an unbounded allocation (a small pixel cap, and the process's memory checked)."""

from __future__ import annotations

from functools import cache

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from pixtools.imaging import ImageError, ImageErrorKind, extract_metadata, probe, render_output
from pixtools.jobspec.ops import Convert, Resize, Rotate
from tests.support.images import encode

MAX_PIXELS = 64 * 64 * 4  # small: whatever a mutated header claims, decoding stays tiny


@cache
def seeds() -> tuple[bytes, ...]:
    base = Image.linear_gradient("L").resize((24, 16)).convert("RGB")
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((24, 16)))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Fuzz"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return (
        encode(base, "JPEG", quality=80, exif=exif, icc_profile=srgb),
        encode(base, "JPEG", quality=80, progressive=True),
        encode(base.convert("CMYK"), "JPEG"),
        encode(rgba, "PNG"),
        encode(base.convert("P"), "PNG", transparency=0),
        encode(base, "WEBP", quality=70),
        encode(rgba, "WEBP", lossless=True),
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        encode(base, "TIFF", compression="tiff_lzw"),
        encode(base, "TIFF"),
        encode(base, "BMP"),
        encode(base, "AVIF", quality=50),
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from([b"\xff" * 4, b"\x7f\xff\xff\xff", b"\x00" * 4])
            )
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[max(at, 1) :]
    return bytes(data)


STEPS = [Rotate(degrees=90), Resize(width=12), Convert(format="png")]


@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=1500,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated())
def test_mutated_images_never_crash(data: bytes) -> None:
    for call in (
        lambda: probe(data, max_pixels=MAX_PIXELS),
        lambda: extract_metadata(data, max_pixels=MAX_PIXELS),
        lambda: render_output(data, STEPS, max_pixels=MAX_PIXELS),
    ):
        try:
            call()
        except ImageError as exc:
            assert exc.kind in ImageErrorKind
            assert str(exc)


def test_fuzzing_kept_memory_bounded() -> None:
    # Runs after the fuzz test in file order: a decoder that allocated per a hostile header
    # would have left this process hundreds of MB larger.
    rss = psutil.Process().memory_info().rss
    assert rss < 1_500 * 1024 * 1024


def test_every_seed_is_valid() -> None:
    for data in seeds():
        out = render_output(data, STEPS, max_pixels=MAX_PIXELS)
        assert out.data is not None and out.width == 12

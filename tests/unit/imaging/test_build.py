"""Which Pillow build runs the engine. CI sets PIXTOOLS_EXPECT_SIMD=1: there it must be
pillow-simd (AVX2 build) with every codec; elsewhere plain Pillow is fine."""

from __future__ import annotations

import os

import PIL

from pixtools.imaging import build_info

REQUIRED = ("jpg", "webp", "libtiff", "littlecms2", "freetype2", "zlib", "avif")


def test_build_info_reports_the_active_pillow() -> None:
    info = build_info()
    assert info["pillow_version"] == PIL.__version__
    assert info["distribution"] == ("pillow-simd" if info["is_simd"] else "pillow")
    assert info["features"]["jpg"] and info["features"]["webp"]
    assert info["avif"] in ("pillow", "pillow-avif-plugin")


def test_pillow_simd_in_ci() -> None:
    info = build_info()
    if os.environ.get("PIXTOOLS_EXPECT_SIMD") == "1":
        assert info["is_simd"], (
            f"expected pillow-simd, found {info['distribution']} {PIL.__version__}"
        )
        assert "post" in info["pillow_version"]
        missing = [name for name in REQUIRED if not info["features"].get(name)]
        assert not missing, f"pillow-simd build lacks {missing}"
        assert info["features"]["libjpeg_turbo"]
    else:
        # Quick start: ordinary Pillow wheels, which carry every codec we use.
        assert all(info["features"].get(name) for name in ("jpg", "webp", "zlib"))

"""Which Pillow build is active: plain Pillow or pillow-simd, and its codecs.

``/health`` reports it and a metric labels it, so a deployment that lost pillow-simd (some
package reinstalled Pillow over it) is visible.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata
from typing import Any

import PIL
from PIL import Image, features

from pixtools.imaging.decode import avif_codec

_FEATURES = ("jpg", "libjpeg_turbo", "webp", "libtiff", "littlecms2", "freetype2", "zlib")


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _is_simd(pil_version: str) -> bool:
    # pillow-simd versions are Pillow's plus ".postN"; the installed PIL package must be the
    # one the pillow-simd distribution put there (a later Pillow install overwrites it).
    simd_version = _distribution_version("pillow-simd")
    return simd_version is not None and simd_version == pil_version and "post" in pil_version


@cache
def build_info() -> dict[str, Any]:
    """``{"pillow_version", "distribution", "is_simd", "avif", "features": {name: bool}}``."""
    version = PIL.__version__
    simd = _is_simd(version)
    avif = avif_codec()
    found = {name: bool(features.check(name)) for name in _FEATURES}
    # Image.SAVE lists only the plugins loaded so far: load them all first (without this,
    # a process that had not saved an image yet reported AVIF missing).
    Image.init()
    found["avif"] = avif is not None and "AVIF" in Image.SAVE
    return {
        "pillow_version": version,
        "distribution": "pillow-simd" if simd else "pillow",
        "is_simd": simd,
        "avif": avif,
        "features": found,
    }

"""A file whose container is whole but whose compressed pixels are not must fail to decode.

Regression: reading a PNG's EXIF loads it; a decode error raised there was swallowed as
"malformed EXIF", and the second ``load()`` returned the half-decoded image as if whole (a
corrupt PNG rendered as grey and the output "succeeded").
"""

from __future__ import annotations

import pytest

from pixtools.imaging.decode import decode
from pixtools.imaging.errors import CorruptImage
from tests.support.images import png_with_corrupt_pixels


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize(("width", "height"), [(96, 64), (300, 200), (64, 640)])
def test_a_png_with_corrupt_pixel_data_is_refused_not_rendered(
    width: int, height: int, mode: str
) -> None:
    data = png_with_corrupt_pixels(width, height, mode)
    with pytest.raises(CorruptImage, match="corrupt or truncated PNG"):
        decode(data, max_pixels=50_000_000)

from __future__ import annotations

import pytest
from PIL import Image

from tests.support.images import encode, photo


@pytest.fixture(scope="session")
def photo_rgb() -> Image.Image:
    return photo((640, 480))


@pytest.fixture(scope="session")
def photo_jpeg(photo_rgb: Image.Image) -> bytes:
    return encode(photo_rgb, "JPEG", quality=92)

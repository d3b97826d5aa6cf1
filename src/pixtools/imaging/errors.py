"""The engine's errors: each carries the *kind* of trouble, never how a caller answers it.

At submit time the API turns them into responses (``pixtools.api.errors``). At output time
every one of them is permanent: the same bytes and steps fail the same way, so the worker
must not retry.
"""

from __future__ import annotations

import enum
import re

# Python object reprs (``<_io.BytesIO object at 0x7fa9...>``) tell a client nothing and an
# attacker about the process: no engine message carries one, whatever text it quotes.
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


class ImageErrorKind(enum.Enum):
    """Why the engine refused an image."""

    #: Not JPEG, PNG, WebP, AVIF, GIF, TIFF or BMP (or a format this build cannot read).
    UNSUPPORTED = "unsupported"
    #: More pixels than allowed, or more memory than can be held.
    TOO_LARGE = "too_large"
    #: Truncated or malformed.
    CORRUPT = "corrupt"
    #: Readable, but a step cannot apply to it (or the result cannot be made).
    UNUSABLE = "unusable"


class ImageError(Exception):
    """Base of every error the image engine raises on purpose."""

    kind: ImageErrorKind = ImageErrorKind.UNUSABLE

    def __init__(self, message: str) -> None:
        message = _OBJECT_REPR.sub("the image data", message)
        super().__init__(message)
        self.message = message


class UnsupportedFormat(ImageError):
    """The bytes are not JPEG, PNG, WebP, AVIF, GIF, TIFF or BMP (sniffed, never trusted)."""

    kind = ImageErrorKind.UNSUPPORTED


class TooManyPixels(ImageError):
    """The header declares more pixels (all frames counted) than ``max_pixels``."""

    kind = ImageErrorKind.TOO_LARGE


class CorruptImage(ImageError):
    """A truncated or malformed image: the header (at submit) or the body (at output time)."""

    kind = ImageErrorKind.CORRUPT


class OperationError(ImageError):
    """A step cannot apply to this image (e.g. a crop box outside it) or cannot be encoded."""

    kind = ImageErrorKind.UNUSABLE

"""The engine's errors: each carries the HTTP status the API maps it to.

At submit time the API turns them into 415/422 responses. At output time every one of them
is permanent: the same bytes and steps fail the same way, so the worker must not retry.
"""

from __future__ import annotations


class ImageError(Exception):
    """Base of every error the image engine raises on purpose."""

    http_status: int = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFormat(ImageError):
    """The bytes are not JPEG, PNG, WebP, AVIF, GIF, TIFF or BMP (sniffed, never trusted)."""

    http_status = 415


class TooManyPixels(ImageError):
    """The header declares more pixels (all frames counted) than ``max_pixels``."""

    http_status = 422


class CorruptImage(ImageError):
    """A truncated or malformed image: the header (at submit) or the body (at output time)."""

    http_status = 422


class OperationError(ImageError):
    """A step cannot apply to this image (e.g. a crop box outside it) or cannot be encoded."""

    http_status = 422

"""``convert`` and ``keep_metadata``: they shape the encoding, which ``render_output`` does
once at the end of the pipeline."""

from __future__ import annotations

from PIL import Image

from pixtools.imaging.context import StepContext
from pixtools.imaging.encode import prepare_for_format
from pixtools.jobspec.ops import Convert, KeepMetadata


def convert(im: Image.Image, p: Convert, ctx: StepContext) -> Image.Image:
    """Bring the pixels to what ``p.format`` can store (alpha, palette, colour space)."""
    return prepare_for_format(im, p.format, ctx)


def keep_metadata(im: Image.Image, p: KeepMetadata, ctx: StepContext) -> Image.Image:
    """Ask the encoder to copy the source's EXIF (orientation reset to 1) and XMP."""
    del p
    ctx.keep_metadata = True
    return im

"""The image engine: decode safely, auto-orient, apply steps, encode. Pure functions over
bytes and PIL images; no I/O, and nothing from ``store``, ``api`` or ``worker``.

The API calls ``sniff_format`` and ``probe`` (header only) at submit; the workers call
``render_output`` per output; ``extract_metadata`` fills a job's ``metadata``.
"""

from pixtools.imaging.build import build_info
from pixtools.imaging.context import StepContext
from pixtools.imaging.decode import SourceInfo, probe
from pixtools.imaging.errors import (
    CorruptImage,
    ImageError,
    ImageErrorKind,
    OperationError,
    TooManyPixels,
    UnsupportedFormat,
)
from pixtools.imaging.formats import FORMATS, sniff_format
from pixtools.imaging.metadata import extract_metadata
from pixtools.imaging.pipeline import Rendered, render_output

__all__ = [
    "FORMATS",
    "CorruptImage",
    "ImageError",
    "ImageErrorKind",
    "OperationError",
    "Rendered",
    "SourceInfo",
    "StepContext",
    "TooManyPixels",
    "UnsupportedFormat",
    "build_info",
    "extract_metadata",
    "probe",
    "render_output",
    "sniff_format",
]

"""The standard ops, one pure function each: ``fn(image, params, ctx) -> image``.

``pixtools.jobspec.ops.OPS`` names them as ``pixtools.imaging.ops:<name>``. An op never mutates
the image it is given; it returns a new one, or the same one when nothing changes.
"""

from pixtools.imaging.ops.geometry import crop, flip, rotate
from pixtools.imaging.ops.output import convert, keep_metadata
from pixtools.imaging.ops.resize import resize
from pixtools.imaging.ops.tone import adjust, blur, grayscale, sharpen
from pixtools.imaging.ops.watermark import watermark

__all__ = [
    "adjust",
    "blur",
    "convert",
    "crop",
    "flip",
    "grayscale",
    "keep_metadata",
    "resize",
    "rotate",
    "sharpen",
    "watermark",
]

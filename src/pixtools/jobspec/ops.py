"""The op registry: every step a job may use, its params Struct, queue and implementation.

This is the single source of truth for ops. An op is declared once: its params Struct
(a ``Step`` subclass, which also says how the op changes the image size and whether it
lets the decoder shrink the source) and its ``OpDef`` passed to ``register``. Validation
(``pixtools.jobspec.job``), the ``GET /api/v1/operations`` catalogue, the web UI and the
workers all read ``OPS``. Implementations are named by import path and resolved lazily, so
importing the spec never imports Pillow's heavy paths or onnxruntime (the API process must
not load ML).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import msgspec

from pixtools.jobspec.queues import ML, STANDARD, Queue
from pixtools.jobspec.sizes import Box, resize_geometry, rotation_matrix

Score = Annotated[float, msgspec.Meta(ge=0, le=1, description="minimum detection score, 0..1")]


def _d(text: str, **constraints: Any) -> msgspec.Meta:
    """A param's description (shown by ``GET /api/v1/operations`` and docs/api.md)."""
    return msgspec.Meta(description=text, **constraints)


_HEX_COLOUR = re.compile(r"#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")

OutputFormat = Literal["jpeg", "png", "webp", "avif", "gif", "tiff"]
LOSSY_FORMATS: frozenset[str] = frozenset({"jpeg", "webp", "avif"})


class Step(msgspec.Struct, tag_field="op", forbid_unknown_fields=True, frozen=True):
    """Base of every step; the ``op`` tag selects the concrete Struct.

    The defaults describe an op that keeps the image size and needs every source pixel;
    an op that does otherwise overrides them.
    """

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The size of this step's result for an input of ``width`` x ``height``."""
        return (width, height)

    def commutes_with_scaling(self) -> bool:
        """True when scaling before this step gives the image scaling after would (up to
        resampling): the source may then be decoded smaller for a later shrink."""
        return False

    def resample_region(self, width: int, height: int) -> tuple[tuple[int, int], Box] | None:  # noqa: ARG002  Step's signature
        """For an op that only resamples a region of its input: its output size and that
        region. A shrink of this kind lets the source be decoded smaller."""
        return None


# --- standard ops ---------------------------------------------------------------------


class Resize(Step, tag="resize", frozen=True):
    """Scale into a box: contain/inside keep aspect, cover crops by gravity, fill stretches."""

    width: (
        Annotated[int, _d("box width in pixels, 1..16384; omitted: from height", ge=1, le=16384)]
        | None
    ) = None
    height: (
        Annotated[int, _d("box height in pixels, 1..16384; omitted: from width", ge=1, le=16384)]
        | None
    ) = None
    fit: Annotated[
        Literal["contain", "cover", "fill", "inside"],
        _d(
            "contain/inside: fit inside the box keeping the aspect ratio; cover: fill the box "
            "and crop the overflow by gravity; fill: stretch to the box exactly"
        ),
    ] = "contain"
    gravity: Annotated[
        Literal["center", "north", "south", "east", "west", "smart"],
        _d("which part cover keeps; smart: the most detailed region"),
    ] = "center"
    upscale: Annotated[
        bool, _d("allow the result to be larger than the source (false: never enlarge)")
    ] = False

    def __post_init__(self) -> None:
        if self.width is None and self.height is None:
            raise ValueError("width: at least one of width and height is required")

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The size after scaling into the box."""
        return resize_geometry(width, height, self)[0]

    def resample_region(self, width: int, height: int) -> tuple[tuple[int, int], Box]:
        """The scaled size and the source region it shows."""
        return resize_geometry(width, height, self)


class Crop(Step, tag="crop", frozen=True):
    """Cut the box (left, top, width, height); it must lie inside the image."""

    left: Annotated[int, _d("pixels from the left edge, 0..16384", ge=0, le=16384)]
    top: Annotated[int, _d("pixels from the top edge, 0..16384", ge=0, le=16384)]
    width: Annotated[int, _d("width of the box in pixels, 1..16384", ge=1, le=16384)]
    height: Annotated[int, _d("height of the box in pixels, 1..16384", ge=1, le=16384)]

    def output_size(self, width: int, height: int) -> tuple[int, int]:  # noqa: ARG002  Step's signature
        """The box's size."""
        return (self.width, self.height)


class Rotate(Step, tag="rotate", frozen=True):
    """Rotate counter-clockwise by ``degrees``, canvas expanded; multiples of 90 are lossless."""

    degrees: Annotated[float, _d("angle, counter-clockwise; any finite number")]
    background: (
        Annotated[str, _d("hex colour of the uncovered corners (#rgb, #rrggbb, #rrggbbaa)")] | None
    ) = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.degrees):
            raise ValueError("degrees: must be a finite number")
        if self.background is not None and not _HEX_COLOUR.fullmatch(self.background):
            raise ValueError("background: must be a hex colour such as #ffffff or #00000000")

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Quarter turns swap the sides; other angles give the rotated bounding box."""
        turns = self.degrees / 90
        if turns == round(turns):
            return (height, width) if round(turns) % 2 else (width, height)
        return rotation_matrix(width, height, self.degrees)[0]

    def commutes_with_scaling(self) -> bool:
        """True for quarter turns only."""
        return self.degrees % 90 == 0  # quarter turns only


class Flip(Step, tag="flip", frozen=True):
    """Mirror horizontally or vertically."""

    direction: Annotated[
        Literal["horizontal", "vertical"], _d("horizontal: left-right; vertical: top-bottom")
    ]

    def commutes_with_scaling(self) -> bool:
        """True: mirroring and scaling commute."""
        return True


class Grayscale(Step, tag="grayscale", frozen=True):
    """Keep luminance only."""

    def commutes_with_scaling(self) -> bool:
        """True: luminance and scaling commute."""
        return True


class Blur(Step, tag="blur", frozen=True):
    """Gaussian blur with standard deviation ``sigma``."""

    sigma: Annotated[
        float, _d("blur radius (standard deviation) in pixels, 0.1..100", ge=0.1, le=100)
    ]


class Sharpen(Step, tag="sharpen", frozen=True):
    """Unsharp mask."""

    amount: Annotated[float, _d("strength of the mask, 0..10", ge=0, le=10)] = 1.0
    radius: Annotated[float, _d("radius of the mask in pixels, 0.1..10", ge=0.1, le=10)] = 1.0


class Adjust(Step, tag="adjust", frozen=True):
    """Brightness, contrast and saturation factors."""

    brightness: Annotated[float, _d("brightness factor, 0..4; 1 = unchanged", ge=0, le=4)] = 1.0
    contrast: Annotated[float, _d("contrast factor, 0..4; 1 = unchanged", ge=0, le=4)] = 1.0
    saturation: Annotated[
        float, _d("colour saturation factor, 0..4; 0 = grey, 1 = unchanged", ge=0, le=4)
    ] = 1.0


class Watermark(Step, tag="watermark", frozen=True):
    """Overlay text in a corner or the centre, sized as a fraction of the image width."""

    text: Annotated[str, _d("the text, 1..200 characters", min_length=1, max_length=200)]
    position: Annotated[
        Literal["bottom-right", "bottom-left", "top-right", "top-left", "center"],
        _d("where the text goes"),
    ] = "bottom-right"
    opacity: Annotated[float, _d("0 = invisible, 1 = opaque", ge=0, le=1)] = 0.5
    size: Annotated[
        float, _d("text height as a fraction of the image width, (0, 1]", gt=0, le=1)
    ] = 0.05


class Convert(Step, tag="convert", frozen=True):
    """Encode to ``format``; must be the last step of an output."""

    format: Annotated[OutputFormat, _d("the output's image format")]
    quality: (
        Annotated[
            int,
            _d(
                "encoder quality 1..100, jpeg/webp/avif only; omitted: jpeg 85, webp 80, avif 60",
                ge=1,
                le=100,
            ),
        ]
        | None
    ) = None
    lossless: Annotated[bool, _d("lossless encoding (webp and avif only)")] = False
    progressive: Annotated[bool, _d("progressive JPEG (jpeg only)")] = False

    def __post_init__(self) -> None:
        if self.quality is not None and self.format not in LOSSY_FORMATS:
            raise ValueError(f"quality: applies to jpeg, webp and avif only, not {self.format}")
        if self.lossless and self.format not in ("webp", "avif"):
            raise ValueError(f"lossless: applies to webp and avif only, not {self.format}")
        if self.progressive and self.format != "jpeg":
            raise ValueError(f"progressive: applies to jpeg only, not {self.format}")


class KeepMetadata(Step, tag="keep_metadata", frozen=True):
    """Copy the source's EXIF (orientation reset to 1) into the output."""

    def commutes_with_scaling(self) -> bool:
        """True: metadata is untouched by scaling."""
        return True


# --- ML ops (queue ml) ------------------------------------------------------------------


class BlurFaces(Step, tag="blur_faces", frozen=True):
    """Blur every detected face."""

    min_score: Score = 0.5
    strength: Annotated[int, _d("blur strength, 1..100", ge=1, le=100)] = 50
    shape: Annotated[Literal["box", "ellipse"], _d("the blurred area around each face")] = "ellipse"


class DetectFaces(Step, tag="detect_faces", frozen=True):
    """Analysis: faces with box, score and landmarks in source pixels."""

    min_score: Score = 0.5


class Ocr(Step, tag="ocr", frozen=True):
    """Analysis: recognised text and its lines."""

    min_score: Score = 0.5


class Moderate(Step, tag="moderate", frozen=True):
    """Analysis: NSFW/SFW probabilities."""


OpKind = Literal["image", "analysis", "encode", "metadata"]


@dataclass(frozen=True, slots=True)
class OpDef:
    """One registry entry: the op's params Struct (its ``op`` tag is the op's name), queue,
    kind and implementation."""

    params: type[Step]
    queue: Queue
    kind: OpKind
    impl: str  # "module:function", resolved lazily
    #: Analysis ops that never look at more than ``side x side`` pixels (they shrink their
    #: input first): a larger JPEG source may be decoded at reduced size for them.
    analysis_side: int | None = None

    @property
    def name(self) -> str:
        """The op's name: its Struct's ``op`` tag."""
        tag = self.params.__struct_config__.tag
        assert isinstance(tag, str)
        return tag

    @property
    def summary(self) -> str:
        """The params Struct's docstring, as the catalogue shows it."""
        return (self.params.__doc__ or "").strip()

    @property
    def analysis(self) -> bool:
        """The op only analyses: it writes a result and leaves the image as it was."""
        return self.kind == "analysis"

    @property
    def must_be_last(self) -> bool:
        """The op encodes the output, so nothing may follow it."""
        return self.kind == "encode"

    def resolve(self) -> Callable[..., Any]:
        """Import and return the implementation (ML ops import onnxruntime here, not before)."""
        module, _, attr = self.impl.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    """Add an op to the registry: from then on specs may use it, the catalogue lists it and
    the pipeline renders it."""
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is already registered")
    OPS[op.name] = op
    return op


def unregister(name: str) -> None:
    """Remove an op added by ``register``."""
    del OPS[name]


def step_types() -> tuple[type[Step], ...]:
    """The params Struct of every registered op, in registry order."""
    return tuple(op.params for op in OPS.values())


def step_union(types: tuple[type[Step], ...]) -> Any:
    """The tagged union msgspec decodes a step as: the ``op`` tag picks the Struct."""
    return Union[types]  # noqa: UP007 - built from a tuple at run time


_IMG = "pixtools.imaging.ops"
_ML = "pixtools.ml.ops"

for _def in (
    OpDef(Resize, STANDARD, "image", f"{_IMG}:resize"),
    OpDef(Crop, STANDARD, "image", f"{_IMG}:crop"),
    OpDef(Rotate, STANDARD, "image", f"{_IMG}:rotate"),
    OpDef(Flip, STANDARD, "image", f"{_IMG}:flip"),
    OpDef(Grayscale, STANDARD, "image", f"{_IMG}:grayscale"),
    OpDef(Blur, STANDARD, "image", f"{_IMG}:blur"),
    OpDef(Sharpen, STANDARD, "image", f"{_IMG}:sharpen"),
    OpDef(Adjust, STANDARD, "image", f"{_IMG}:adjust"),
    OpDef(Watermark, STANDARD, "image", f"{_IMG}:watermark"),
    OpDef(Convert, STANDARD, "encode", f"{_IMG}:convert"),
    OpDef(KeepMetadata, STANDARD, "metadata", f"{_IMG}:keep_metadata"),
    OpDef(BlurFaces, ML, "image", f"{_ML}:blur_faces"),
    # The sides are the ML modules' own input caps (ml.faces.MAX_SIDE, ml.moderation's
    # 256 px resize); a test holds them equal. OCR reads line crops at full resolution.
    OpDef(DetectFaces, ML, "analysis", f"{_ML}:detect_faces", analysis_side=1600),
    OpDef(Ocr, ML, "analysis", f"{_ML}:ocr"),
    OpDef(Moderate, ML, "analysis", f"{_ML}:moderate", analysis_side=256),
):
    register(_def)


def op_of(step: Step) -> OpDef:
    """The registry entry of a step instance."""
    tag = type(step).__struct_config__.tag
    assert isinstance(tag, str)
    return OPS[tag]


def analysis_only(steps: Iterable[Step]) -> bool:
    """True when there are steps and every one only analyses: no image is made."""
    defs = [op_of(step) for step in steps]
    return bool(defs) and all(op.analysis for op in defs)

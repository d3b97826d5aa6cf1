"""What a step may know besides its image and params: the source, the analysis result,
and the affine map from the current image's coordinates back to source pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class StepContext:
    """Carried through one output's pipeline.

    ``to_source`` is a 2x3 affine matrix ``(a, b, c, d, e, f)`` mapping a point ``(x, y)``
    of the current image to ``(a*x + b*y + c, d*x + e*y + f)`` in the auto-oriented source.
    Geometric ops compose their inverse into it, so analysis ops can report source pixels.
    """

    source_format: str
    source_size: tuple[int, int]
    exif: bytes | None = None
    icc_profile: bytes | None = None
    keep_metadata: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    to_source: tuple[float, float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    xmp: bytes | None = None
    #: Set while the image is a reduced-size (DCT-domain) decode: the upright size it stands
    #: for. The first resize computes its geometry from it, so a JPEG gives the same output
    #: size as the same picture in any other format; quarter turns swap it.
    nominal_size: tuple[int, int] | None = None

    def compose(self, m: tuple[float, float, float, float, float, float]) -> None:
        """Record a geometric op: ``m`` maps the new image's points to the previous image's."""
        a, b, c, d, e, f = self.to_source
        ma, mb, mc, md, me, mf = m
        self.to_source = (
            a * ma + b * md,
            a * mb + b * me,
            a * mc + b * mf + c,
            d * ma + e * md,
            d * mb + e * me,
            d * mc + e * mf + f,
        )

    def point_to_source(self, x: float, y: float) -> tuple[float, float]:
        """Map a point of the current image to the source image's pixels."""
        a, b, c, d, e, f = self.to_source
        return (a * x + b * y + c, d * x + e * y + f)

    def box_to_source(self, box: tuple[float, float, float, float]) -> list[float]:
        """Map an axis-aligned box; the result is the bounding box of its mapped corners."""
        x0, y0, x1, y1 = box
        pts = [self.point_to_source(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return [round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)]

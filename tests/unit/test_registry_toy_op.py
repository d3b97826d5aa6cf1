"""An op declared in one place (its params Struct and its ``OpDef``, registered) is validated
by ``parse_spec``, listed by the catalogue and rendered by the pipeline."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Annotated

import msgspec
import pytest
from PIL import Image, ImageOps

from pixtools.api.catalogue import catalogue
from pixtools.imaging import StepContext, render_output
from pixtools.jobspec import SpecError, parse_spec, spec_to_builtins
from pixtools.jobspec.job import check_result_sizes, steps_from_builtins
from pixtools.jobspec.ops import OpDef, Step, register, unregister
from pixtools.jobspec.queues import STANDARD
from tests.support.images import jpeg_bytes


class Border(Step, tag="toy_border", frozen=True):
    """Pad the image with a black border."""

    size: Annotated[int, msgspec.Meta(ge=1, le=100, description="border width in pixels")]

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return (width + 2 * self.size, height + 2 * self.size)


def border(im: Image.Image, params: Border, ctx: StepContext) -> Image.Image:
    return ImageOps.expand(im, params.size)


@pytest.fixture
def toy_op() -> Iterator[OpDef]:
    op = register(OpDef(Border, STANDARD, "image", f"{__name__}:border"))
    yield op
    unregister(op.name)


def _spec(*steps: dict[str, object]) -> str:
    return msgspec.json.encode({"outputs": [{"name": "a", "steps": list(steps)}]}).decode()


def test_the_toy_op_is_validated_by_parse_spec(toy_op: OpDef) -> None:
    spec = parse_spec(_spec({"op": "toy_border", "size": 3}, {"op": "convert", "format": "png"}))
    assert spec.outputs[0].steps[0] == Border(size=3)
    assert spec.outputs[0].queue == STANDARD and not spec.outputs[0].analysis_only
    stored = spec_to_builtins(spec)["outputs"]
    assert isinstance(stored, list)
    assert steps_from_builtins(stored[0]["steps"])[0] == Border(size=3)  # as the worker reads
    with pytest.raises(SpecError) as info:
        parse_spec(_spec({"op": "toy_border", "size": 0}))
    assert info.value.field == "outputs[0].steps[0].size"
    assert info.value.message == "Expected `int` >= 1"
    # The op's size (210x210 from 10x10) reaches the submit-time pixel check.
    check_result_sizes(
        parse_spec(_spec({"op": "toy_border", "size": 100})), 10, 10, "png", max_pixels=44_100
    )
    with pytest.raises(SpecError) as info:
        check_result_sizes(
            parse_spec(_spec({"op": "toy_border", "size": 100})), 10, 10, "png", max_pixels=44_099
        )
    assert info.value.field == "outputs[0].steps[0]"


def test_the_toy_op_is_listed_by_the_catalogue(toy_op: OpDef) -> None:
    assert catalogue()[-1] == {
        "op": "toy_border",
        "queue": "standard",
        "kind": "image",
        "summary": "Pad the image with a black border.",
        "params": [
            {
                "name": "size",
                "type": "int",
                "required": True,
                "constraints": {"ge": 1, "le": 100},
                "description": "border width in pixels",
            }
        ],
    }


def test_the_toy_op_is_rendered_by_the_pipeline(toy_op: OpDef) -> None:
    spec = parse_spec(_spec({"op": "toy_border", "size": 5}, {"op": "convert", "format": "png"}))
    out = render_output(jpeg_bytes(40, 30), spec.outputs[0].steps, max_pixels=10_000)
    assert (out.width, out.height) == (50, 40)
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert im.getpixel((0, 0)) == (0, 0, 0)


def test_an_op_not_registered_is_refused_and_not_listed() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_spec({"op": "toy_border", "size": 3}))
    assert info.value.field == "outputs[0].steps[0].op"
    assert "toy_border" not in {op["op"] for op in catalogue()}


def test_an_op_is_registered_once(toy_op: OpDef) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(toy_op)

"""Result sizes over random step chains: the size predicted at submit for every step is the
size the engine renders, and a chain is refused at submit exactly when it is refused at
render (a step over the pixel limit, or a result the format cannot store)."""

from __future__ import annotations

import io
import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixtools.imaging import ImageError, TooManyPixels, render_output
from pixtools.jobspec.job import ResultTooLarge, check_against_source, parse_spec
from pixtools.jobspec.ops import (
    Blur,
    Convert,
    Crop,
    Flip,
    Grayscale,
    Resize,
    Rotate,
    Step,
    Watermark,
)
from pixtools.jobspec.sizes import FORMAT_MAX_SIDE, step_size, step_sizes

small = st.integers(min_value=1, max_value=120)


@st.composite
def step_chain(draw: st.DrawFn, width: int, height: int) -> list[Step]:
    """Up to 5 steps, each valid for the size the previous ones leave (crops inside)."""
    steps: list[Step] = []
    w, h = width, height
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["resize", "crop", "rotate", "flip", "tone"]))
        step: Step
        if kind == "resize":
            step = Resize(
                width=draw(st.none() | small),
                height=draw(small),
                fit=draw(st.sampled_from(["contain", "inside", "cover", "fill"])),
                gravity=draw(st.sampled_from(["center", "north", "east", "smart"])),
                upscale=draw(st.booleans()),
            )
        elif kind == "crop":
            cw, ch = draw(st.integers(1, w)), draw(st.integers(1, h))
            step = Crop(
                left=draw(st.integers(0, w - cw)),
                top=draw(st.integers(0, h - ch)),
                width=cw,
                height=ch,
            )
        elif kind == "rotate":
            step = Rotate(
                degrees=draw(st.sampled_from([90, 180, 270, -90, 45, 30, 1.5, 359, -17.25]))
            )
        elif kind == "flip":
            step = Flip(direction=draw(st.sampled_from(["horizontal", "vertical"])))
        else:
            step = draw(st.sampled_from([Grayscale(), Blur(sigma=0.5), Watermark(text="x")]))
        steps.append(step)
        w, h = step_size(step, w, h)
    return steps


def _png(width: int, height: int, mode: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (30, 90, 160, 200)[: len(mode)]).save(out, format="PNG")
    return out.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), width=small, height=small, mode=st.sampled_from(["RGB", "RGBA", "L"]))
def test_predicted_size_is_rendered_size(
    data: st.DataObject, width: int, height: int, mode: str
) -> None:
    steps = data.draw(step_chain(width, height))
    fmt = data.draw(st.sampled_from(["png", "webp", "gif", "jpeg", "tiff"]))
    chain = [*steps, Convert(format=fmt)]  # type: ignore[arg-type]
    predicted = step_sizes(chain, width, height)
    out = render_output(_png(width, height, mode), chain, max_pixels=50_000_000)
    assert (out.width, out.height) == predicted[-1]
    with Image.open(io.BytesIO(out.data or b"")) as im:
        assert im.size == predicted[-1]


def _spec(steps: list[Step]) -> str:
    return json.dumps({"outputs": [{"name": "o", "steps": msgspec.to_builtins(steps)}]})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), width=small, height=small, limit=st.integers(50, 20_000))
def test_refused_at_submit_exactly_when_refused_at_render(
    data: st.DataObject, width: int, height: int, limit: int
) -> None:
    steps = data.draw(step_chain(width, height))
    if not steps:
        steps = [Grayscale()]
    spec = parse_spec(_spec(steps))
    source = _png(width, height, "RGB")
    refused_at_submit = False
    try:
        check_against_source(spec, width, height, source_format="png", max_pixels=limit)
    except ResultTooLarge as exc:
        refused_at_submit = True
        assert exc.status == 422 and exc.field.startswith("outputs[0].steps[")
    if width * height > limit:
        return  # the source itself is over the limit: refused before any step
    try:
        render_output(source, spec.outputs[0].steps, max_pixels=limit)
    except TooManyPixels:
        assert refused_at_submit
    except ImageError:
        raise
    else:
        assert not refused_at_submit


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "gif", "avif"])
def test_a_result_over_the_format_maximum_is_refused_at_submit_and_at_render(fmt: str) -> None:
    """A strip one pixel longer than the format allows (a long PNG is a few bytes)."""
    side = FORMAT_MAX_SIDE[fmt] + 1
    spec = parse_spec(_spec([Grayscale(), Convert(format=fmt)]))  # type: ignore[arg-type]
    with pytest.raises(ResultTooLarge, match=f"at most {side - 1:,} pixels a side") as caught:
        check_against_source(spec, side, 1, source_format="png", max_pixels=50_000_000)
    assert caught.value.field == "outputs[0].steps[1].format"
    with pytest.raises(ImageError, match="pixels a side"):
        render_output(_png(side, 1, "RGB"), spec.outputs[0].steps, max_pixels=50_000_000)
    # One pixel shorter is written.
    out = render_output(_png(side - 1, 1, "RGB"), spec.outputs[0].steps, max_pixels=50_000_000)
    assert (out.width, out.height) == (side - 1, 1)

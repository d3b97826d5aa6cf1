"""Hypothesis: any valid spec round-trips; any invalid param is refused with its path."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pixtools.jobspec import OPS, SpecError, parse_spec, spec_to_builtins
from pixtools.jobspec.ops import Step

names = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z", fullmatch=True)


# st.from_type respects msgspec Meta constraints poorly; build params from our own ranges.
def finite(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


STEP_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "resize": st.fixed_dictionaries(
        {"width": st.integers(1, 16384)},
        optional={
            "height": st.integers(1, 16384),
            "fit": st.sampled_from(["contain", "cover", "fill", "inside"]),
            "gravity": st.sampled_from(["center", "north", "south", "east", "west", "smart"]),
            "upscale": st.booleans(),
        },
    ),
    "crop": st.fixed_dictionaries(
        {
            "left": st.integers(0, 16384),
            "top": st.integers(0, 16384),
            "width": st.integers(1, 16384),
            "height": st.integers(1, 16384),
        }
    ),
    "rotate": st.fixed_dictionaries(
        {"degrees": finite(-1e6, 1e6)},
        optional={"background": st.from_regex(r"\A#[0-9a-f]{6}\Z", fullmatch=True)},
    ),
    "flip": st.fixed_dictionaries({"direction": st.sampled_from(["horizontal", "vertical"])}),
    "grayscale": st.just({}),
    "blur": st.fixed_dictionaries({"sigma": finite(0.1, 100)}),
    "sharpen": st.fixed_dictionaries(
        {}, optional={"amount": finite(0, 10), "radius": finite(0.1, 10)}
    ),
    "adjust": st.fixed_dictionaries(
        {},
        optional={k: finite(0, 4) for k in ("brightness", "contrast", "saturation")},
    ),
    "watermark": st.fixed_dictionaries(
        {
            # Drawable text: control characters and blank text are refused (spec.job).
            "text": st.text(
                st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=200
            ).filter(str.strip)
        },
        optional={"opacity": finite(0, 1), "size": finite(0.01, 1)},
    ),
    "keep_metadata": st.just({}),
    "blur_faces": st.fixed_dictionaries(
        {},
        optional={
            "min_score": finite(0, 1),
            "strength": st.integers(1, 100),
            "shape": st.sampled_from(["box", "ellipse"]),
        },
    ),
    "detect_faces": st.fixed_dictionaries({}, optional={"min_score": finite(0, 1)}),
    "ocr": st.fixed_dictionaries({}, optional={"min_score": finite(0, 1)}),
    "moderate": st.just({}),
}
CONVERT = st.one_of(
    st.fixed_dictionaries(
        {"format": st.sampled_from(["jpeg", "webp", "avif"])},
        optional={"quality": st.integers(1, 100)},
    ),
    st.fixed_dictionaries({"format": st.sampled_from(["png", "gif", "tiff"])}),
)


def test_every_op_has_a_strategy() -> None:
    assert set(STEP_STRATEGIES) | {"convert"} == set(OPS)


@st.composite
def steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    ops = draw(st.lists(st.sampled_from(sorted(STEP_STRATEGIES)), min_size=0, max_size=14))
    out = [{"op": op, **draw(STEP_STRATEGIES[op])} for op in ops]
    if not out or draw(st.booleans()):
        out.append({"op": "convert", **draw(CONVERT)})
    return out


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    output_names = draw(st.lists(names, min_size=1, max_size=10, unique=True))
    spec: dict[str, Any] = {"outputs": [{"name": n, "steps": draw(steps())} for n in output_names]}
    for key, strategy in (("metadata", st.booleans()), ("archive", st.booleans())):
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    return spec


@settings(max_examples=200, deadline=None)
@given(specs())
def test_valid_specs_round_trip(raw: dict[str, Any]) -> None:
    parsed = parse_spec(json.dumps(raw))
    data: dict[str, Any] = spec_to_builtins(parsed)
    # Idempotent: the filled-in spec parses to the same thing.
    assert parse_spec(json.dumps(data)) == parsed
    # Everything the client said survives; defaults only add.
    for given_out, got in zip(raw["outputs"], data["outputs"], strict=True):
        assert got["name"] == given_out["name"]
        for given_step, got_step in zip(given_out["steps"], got["steps"], strict=True):
            for k, v in given_step.items():
                assert got_step[k] == v
    assert data["archive"] == raw.get("archive", len(raw["outputs"]) > 1)
    assert isinstance(parsed.outputs[-1].steps[-1], Step)


# (op, param, a value outside its range or of the wrong type)
BAD_VALUES = st.sampled_from(
    [
        ("resize", "width", 0),
        ("resize", "width", 16385),
        ("resize", "height", -1),
        ("resize", "fit", "stretch"),
        ("resize", "gravity", "up"),
        ("resize", "upscale", "yes"),
        ("crop", "left", -1),
        ("crop", "width", 0),
        ("rotate", "degrees", "ninety"),
        ("flip", "direction", "diagonal"),
        ("blur", "sigma", 0.0),
        ("blur", "sigma", 101),
        ("sharpen", "amount", 11),
        ("sharpen", "radius", 0),
        ("adjust", "brightness", 4.5),
        ("adjust", "contrast", -0.1),
        ("watermark", "text", ""),
        ("watermark", "text", "x" * 201),
        ("watermark", "opacity", 1.5),
        ("watermark", "position", "middle"),
        ("convert", "quality", 0),
        ("convert", "quality", 101),
        ("convert", "format", "bmp"),
        ("convert", "progressive", 1),
        ("blur_faces", "min_score", 1.5),
        ("blur_faces", "strength", 0),
        ("blur_faces", "strength", 101),
        ("ocr", "min_score", -0.1),
    ]
)
VALID_BASE: dict[str, dict[str, Any]] = {
    "resize": {"width": 10},
    "crop": {"left": 0, "top": 0, "width": 1, "height": 1},
    "rotate": {"degrees": 90},
    "flip": {"direction": "vertical"},
    "blur": {"sigma": 1},
    "watermark": {"text": "x"},
    "convert": {"format": "jpeg"},
}


@settings(max_examples=150, deadline=None)
@given(specs(), BAD_VALUES, st.data())
def test_any_invalid_param_is_refused_with_its_path(
    raw: dict[str, Any], bad: tuple[str, str, Any], data: st.DataObject
) -> None:
    op, param, value = bad
    i = data.draw(st.integers(0, len(raw["outputs"]) - 1))
    steps_ = raw["outputs"][i]["steps"]
    if op == "convert":
        step = {"op": "convert", **VALID_BASE["convert"], param: value}
        if steps_[-1]["op"] == "convert":
            steps_[-1] = step
        else:
            steps_.append(step)
        j = len(steps_) - 1
    else:
        j = data.draw(st.integers(0, max(0, len(steps_) - 1)))
        steps_.insert(j, {"op": op, **VALID_BASE.get(op, {}), param: value})
        if len(steps_) > 16:
            del steps_[j + 1 :]
            if steps_[-1]["op"] == "convert" and j != len(steps_) - 1:
                steps_.pop()
    try:
        parse_spec(json.dumps(raw))
    except SpecError as exc:
        assert exc.field == f"outputs[{i}].steps[{j}].{param}", (exc.field, exc.message)
    else:
        raise AssertionError(f"accepted {op}.{param}={value!r}")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_input_never_crashes(raw: bytes | str) -> None:
    try:
        parse_spec(raw)
    except SpecError as exc:
        assert exc.field
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:  # pragma: no cover
        raise AssertionError(f"leaked {exc!r}") from exc

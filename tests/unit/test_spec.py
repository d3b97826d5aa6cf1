"""The job spec: what is accepted, what is filled in, and how a refusal names the field."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from pixtools.jobspec import OPS, SpecError, parse_spec, spec_to_builtins
from pixtools.jobspec.job import AnyStep


def spec(*outputs: dict[str, Any], **extra: object) -> str:
    return json.dumps({"outputs": list(outputs), **extra})


def out(name: str = "a", *steps: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "steps": list(steps) or [{"op": "grayscale"}]}


def error_of(raw: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    return info.value


def test_contract_example_is_accepted_with_defaults_filled_in() -> None:
    raw = spec(
        out(
            "thumb",
            {"op": "resize", "width": 320, "height": 320, "fit": "cover"},
            {"op": "convert", "format": "webp", "quality": 80},
        ),
        out("private", {"op": "blur_faces"}, {"op": "convert", "format": "jpeg", "quality": 85}),
        metadata=True,
        webhook_url="https://client.example/hooks/pixtools",
    )
    data: dict[str, Any] = spec_to_builtins(parse_spec(raw))
    assert data["archive"] is True  # more than one output
    assert data["outputs"][0]["steps"][0] == {
        "op": "resize",
        "width": 320,
        "height": 320,
        "fit": "cover",
        "gravity": "center",
        "upscale": False,
    }
    assert data["outputs"][1]["steps"][0] == {
        "op": "blur_faces",
        "min_score": 0.5,
        "strength": 50,
        "shape": "ellipse",
    }


def test_archive_defaults_to_false_for_one_output() -> None:
    assert parse_spec(spec(out())).archive is False


def test_output_queue_is_ml_when_any_step_is_ml() -> None:
    s = parse_spec(spec(out("a", {"op": "resize", "width": 10}, {"op": "detect_faces"}), out("b")))
    assert [o.queue for o in s.outputs] == ["ml", "standard"]
    assert not s.outputs[0].analysis_only
    assert parse_spec(spec(out("c", {"op": "ocr"}, {"op": "moderate"}))).outputs[0].analysis_only


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            spec(
                out(
                    "a",
                    {"op": "resize", "width": 1},
                    {"op": "convert", "format": "webp", "quality": 101},
                )
            ),
            "outputs[0].steps[1].quality",
        ),
        (spec(out("a", {"op": "nope"})), "outputs[0].steps[0].op"),
        (
            spec(out("a", {"op": "resize", "width": 1, "colour": "red"})),
            "outputs[0].steps[0].colour",
        ),
        (spec(out("a", {"op": "resize"})), "outputs[0].steps[0].width"),
        (spec(out("a", {"op": "resize", "width": 0})), "outputs[0].steps[0].width"),
        (spec(out("a", {"op": "resize", "width": "10"})), "outputs[0].steps[0].width"),
        (spec(out("a", {"op": "blur", "sigma": 100.5})), "outputs[0].steps[0].sigma"),
        (
            spec(out("a", {"op": "convert", "format": "png", "quality": 80})),
            "outputs[0].steps[0].quality",
        ),
        (
            spec(out("a", {"op": "convert", "format": "jpeg", "lossless": True})),
            "outputs[0].steps[0].lossless",
        ),
        (
            spec(out("a", {"op": "convert", "format": "jpeg"}, {"op": "grayscale"})),
            "outputs[0].steps[0].op",
        ),
        (spec(out("a"), out("a")), "outputs[1].name"),
        (spec(out("Bad Name")), "outputs[0].name"),
        (spec(*[out(f"o{i}") for i in range(11)]), "outputs"),
        (spec(out("a", *[{"op": "grayscale"}] * 17)), "outputs[0].steps"),
        (json.dumps({"outputs": []}), "outputs"),
        (spec(out(), webhook_url="ftp://example.com/x"), "webhook_url"),
        (spec(out(), webhook_url="/relative"), "webhook_url"),
        (spec(out(), extra_field=1), "extra_field"),
        (
            spec(out("a", {"op": "rotate", "degrees": 10, "background": "blue"})),
            "outputs[0].steps[0].background",
        ),
        (spec(out("a", {"op": "watermark", "text": ""})), "outputs[0].steps[0].text"),
        (spec(out("a", {"op": "blur_faces", "shape": "star"})), "outputs[0].steps[0].shape"),
        ("{not json", "spec"),
        ("[]", "spec"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(raw: str, field: str) -> None:
    assert error_of(raw).field == field


def test_every_registered_op_is_in_the_step_union_and_back() -> None:
    union_tags = {t.__struct_config__.tag for t in get_args(AnyStep)}
    assert union_tags == set(OPS)


def test_op_implementations_resolve_for_standard_ops() -> None:
    for op in OPS.values():
        if op.queue == "standard":
            assert callable(op.resolve())


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        (
            [{"op": "crop", "left": 0, "top": 0, "width": 101, "height": 10}],
            "outputs[0].steps[0].width",
        ),
        (
            [{"op": "crop", "left": 0, "top": 45, "width": 10, "height": 10}],
            "outputs[0].steps[0].height",
        ),
        (
            [
                {"op": "rotate", "degrees": 90},
                {"op": "crop", "left": 0, "top": 0, "width": 60, "height": 10},
            ],
            "outputs[0].steps[1].width",
        ),
        (
            [
                {"op": "crop", "left": 10, "top": 10, "width": 20, "height": 20},
                {"op": "grayscale"},
                {"op": "crop", "left": 5, "top": 5, "width": 20, "height": 5},
            ],
            "outputs[0].steps[2].width",
        ),
    ],
)
def test_crops_that_cannot_fit_the_source_are_refused(
    steps: list[dict[str, Any]], field: str
) -> None:
    from pixtools.jobspec.job import check_against_source

    with pytest.raises(SpecError) as info:
        check_against_source(parse_spec(spec(out("a", *steps))), 100, 50)
    assert info.value.field == field


def test_crop_checks_stop_where_the_size_is_not_known() -> None:
    from pixtools.jobspec.job import check_against_source

    ok: list[list[dict[str, Any]]] = [
        [{"op": "crop", "left": 0, "top": 0, "width": 100, "height": 50}],
        [
            {"op": "flip", "direction": "vertical"},
            {"op": "rotate", "degrees": 180},
            {"op": "crop", "left": 90, "top": 40, "width": 10, "height": 10},
        ],
        [
            {"op": "resize", "width": 1000, "upscale": True},
            {"op": "crop", "left": 500, "top": 0, "width": 10, "height": 10},
        ],
    ]
    for steps in ok:
        check_against_source(parse_spec(spec(out("a", *steps))), 100, 50)

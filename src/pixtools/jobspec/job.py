"""The job spec: outputs, each a pipeline of steps, plus job-level options.

``parse_spec`` is the one entry point: JSON text in, a validated ``JobSpec`` with defaults
filled in out, or a ``SpecError`` naming the field path (``outputs[0].steps[1].quality``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, cast
from urllib.parse import urlsplit

import msgspec

from pixtools.jobspec.ops import (
    Convert,
    Crop,
    Step,
    Watermark,
    analysis_only,
    op_of,
    step_types,
    step_union,
)
from pixtools.jobspec.queues import ML, STANDARD, Queue
from pixtools.jobspec.sizes import format_size_problem, pixels_problem, step_size, step_sizes

#: The ops registered when this module is imported (every built-in op): ``OutputSpec``
#: decodes these; ops registered later are decoded by ``_decoded_type``'s subclasses.
_STEP_TYPES = step_types()
if TYPE_CHECKING:
    AnyStep: TypeAlias = Step
else:
    AnyStep = step_union(_STEP_TYPES)
_STEPS = msgspec.Meta(min_length=1, max_length=16)
_OUTPUTS = msgspec.Meta(min_length=1, max_length=10)

# ``$`` alone also matches before a final newline (msgspec applies patterns with
# ``re.search``); ``$(?!\n)`` is the true end in Python and reads the same in the OpenAPI
# (ECMA) regex dialect, where ``\Z`` does not exist.
OutputName = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$(?!\n)", description="output name")
]


class OutputSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One named output: an ordered pipeline of steps applied to the source."""

    name: OutputName
    steps: Annotated[list[AnyStep], _STEPS]

    @property
    def queue(self) -> Queue:
        """``ml`` when any step is an ML op (then every step runs there), else ``standard``."""
        return ML if any(op_of(s).queue == ML for s in self.steps) else STANDARD

    @property
    def analysis_only(self) -> bool:
        """True when every step only analyses: the output stores a result and no image."""
        return analysis_only(self.steps)

    @property
    def convert(self) -> Convert | None:
        """The final ``convert`` step, if the output has one."""
        last = self.steps[-1]
        return last if isinstance(last, Convert) else None


class JobSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What a client asks for. ``archive`` is filled in by ``parse_spec`` when omitted."""

    outputs: Annotated[list[OutputSpec], _OUTPUTS]
    metadata: bool = False
    archive: bool | None = None
    webhook_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None


class SpecError(ValueError):
    """A spec that cannot be accepted; ``field`` is the path of the offending value."""

    #: The HTTP status the API answers with: 400 for a spec wrong in itself.
    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_FIELD_PREFIX = re.compile(r"^(?P<name>[a-z_]+): (?P<msg>.*)$", re.DOTALL)


def _from_validation(exc: msgspec.ValidationError | msgspec.DecodeError) -> SpecError:
    text = str(exc)
    m = _AT.match(text)
    path, msg = (m["path"].lstrip("."), m["msg"]) if m else ("", text)
    # Name the exact field where msgspec points at its parent object.
    if (u := _UNKNOWN.search(msg)) is not None:
        path = f"{path}.{u['name']}" if path else u["name"]
    elif (p := _FIELD_PREFIX.match(msg)) is not None:
        path, msg = (f"{path}.{p['name']}" if path else p["name"]), p["msg"]
    return SpecError(path or "spec", msg)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL to send a request to, or None.

    Whitespace and control characters are refused outright: ``urlsplit`` silently drops
    tabs and newlines (``"http://exa\nmple.com/"`` parses as example.com), so a URL with a
    trailing newline would be checked as one URL and stored as another.
    """
    bad = next((c for c in url if c <= " " or "\x7f" <= c <= "\x9f"), None)
    if bad is not None:
        return f"must not contain whitespace or control characters (found U+{ord(bad):04X})"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: a bad one raises here
    except ValueError as exc:  # "[::1" (unclosed bracket), ":99999", ":abc"
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    return None


def _check_webhook_url(url: str) -> None:
    problem = url_problem(url)
    if problem is not None:
        raise SpecError("webhook_url", problem)
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise SpecError("webhook_url", "must not carry credentials")


def _check_watermark_text(field: str, text: str) -> None:
    # Control characters (newlines, tabs, NUL...) have no glyphs and fail the text layout
    # (raqm_layout() failed): refused here, at submit, not after the worker tried.
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise SpecError(field, f"must not contain control characters (found U+{ord(bad):04X})")
    if not text.strip():
        raise SpecError(field, "must contain something to draw, not only spaces")


def _check(spec: JobSpec) -> JobSpec:
    seen: set[str] = set()
    for i, out in enumerate(spec.outputs):
        if out.name in seen:
            raise SpecError(f"outputs[{i}].name", f"duplicate output name {out.name!r}")
        seen.add(out.name)
        for j, step in enumerate(out.steps[:-1]):
            if op_of(step).must_be_last:
                raise SpecError(
                    f"outputs[{i}].steps[{j}].op", f"{op_of(step).name} must be the last step"
                )
        for j, step in enumerate(out.steps):
            if isinstance(step, Watermark):
                _check_watermark_text(f"outputs[{i}].steps[{j}].text", step.text)
    if spec.webhook_url is not None:
        _check_webhook_url(spec.webhook_url)
    if spec.archive is None:
        spec = msgspec.structs.replace(spec, archive=len(spec.outputs) > 1)
    return spec


def _decoded_type() -> type[JobSpec]:
    """``JobSpec``, or, once ops are registered after import, a subclass whose steps are
    every registered op (msgspec fixes a Struct's field types on first use)."""
    types = step_types()
    return JobSpec if types == _STEP_TYPES else _with_steps(types)


@functools.cache
def _with_steps(types: tuple[type[Step], ...]) -> type[JobSpec]:
    output = msgspec.defstruct(
        "OutputSpec",
        [("steps", Annotated[list[step_union(types)], _STEPS])],  # type: ignore[misc]
        bases=(OutputSpec,),
        forbid_unknown_fields=True,
        frozen=True,
    )
    job = msgspec.defstruct(
        "JobSpec",
        [("outputs", Annotated[list[output], _OUTPUTS])],  # type: ignore[valid-type]
        bases=(JobSpec,),
        forbid_unknown_fields=True,
        frozen=True,
    )
    return cast(type[JobSpec], job)


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise SpecError("spec", f"duplicate key {key!r} in a JSON object")
        seen[key] = value
    return seen


def parse_spec(raw: str | bytes) -> JobSpec:
    """Decode and validate a job spec from JSON; raise ``SpecError`` naming the field."""
    # msgspec keeps the last of duplicate keys silently; a spec saying two things about one
    # field is refused instead (a second, stdlib pass: specs are a few hundred bytes).
    # Malformed JSON is left to msgspec's error below, which names it.
    with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
    try:
        spec = msgspec.json.decode(raw, type=_decoded_type())
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
            raise SpecError("spec", f"malformed JSON: {exc}") from None
        raise _from_validation(exc) from None
    return _check(spec)


def spec_to_builtins(spec: JobSpec) -> dict[str, object]:
    """The spec as plain JSON-able data, defaults filled in (as stored and returned)."""
    data = msgspec.to_builtins(spec)
    assert isinstance(data, dict)
    return data


def steps_from_builtins(data: object) -> list[Step]:
    """Stored steps back as Structs (the inverse of ``spec_to_builtins``)."""
    steps: Any = list[step_union(step_types())]  # type: ignore[misc]
    return list(msgspec.convert(data, type=steps))


class ResultTooLarge(SpecError):
    """A spec valid in itself whose result, for this source, exceeds a limit (422)."""

    status = 422


def check_result_sizes(
    spec: JobSpec, width: int, height: int, source_format: str, max_pixels: int
) -> None:
    """Refuse, at submit, any output whose steps would make an image over ``max_pixels`` or
    one its format cannot store; the error names the step. Every step's size is computed
    from the (auto-oriented) source size by the engine's own geometry."""
    for i, out in enumerate(spec.outputs):
        sizes = step_sizes(out.steps, width, height)
        for j, (w, h) in enumerate(sizes):
            problem = pixels_problem(w, h, max_pixels)
            if problem is not None:
                raise ResultTooLarge(f"outputs[{i}].steps[{j}]", problem)
        if out.analysis_only:
            continue
        last = len(out.steps) - 1
        convert = out.convert
        problem = format_size_problem(
            convert.format if convert is not None else source_format, *sizes[-1]
        )
        if problem is not None:
            field = f"outputs[{i}].steps[{last}]" + (".format" if convert is not None else "")
            raise ResultTooLarge(field, problem)


def check_against_source(
    spec: JobSpec,
    width: int,
    height: int,
    *,
    source_format: str | None = None,
    max_pixels: int | None = None,
) -> None:
    """Refuse, at submit, crops that cannot fit the (auto-oriented) source, and (given the
    source's format and the pixel limit) results over the limits (``ResultTooLarge``).

    Each step's input size is known exactly from the source's (``pixtools.jobspec.sizes``, the
    geometry the engine renders with), so a crop after a resize or a rotation is judged too.
    """
    for i, out in enumerate(spec.outputs):
        w, h = width, height
        for j, step in enumerate(out.steps):
            if isinstance(step, Crop):
                if step.left + step.width > w:
                    raise SpecError(
                        f"outputs[{i}].steps[{j}].width",
                        f"left + width = {step.left + step.width} exceeds the image width {w}",
                    )
                if step.top + step.height > h:
                    raise SpecError(
                        f"outputs[{i}].steps[{j}].height",
                        f"top + height = {step.top + step.height} exceeds the image height {h}",
                    )
            w, h = step_size(step, w, h)
    if source_format is not None and max_pixels is not None:
        check_result_sizes(spec, width, height, source_format, max_pixels)

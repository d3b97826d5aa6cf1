"""``GET /api/v1/operations``: the op catalogue, generated from the one registry."""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from litestar import get

from pixtools.jobspec.ops import OPS, OpDef


def _param(field: msgspec.inspect.Field) -> dict[str, Any]:
    t = field.type
    constraints: dict[str, Any] = {}
    description = None
    while True:
        if isinstance(t, msgspec.inspect.Metadata):
            description = (t.extra_json_schema or {}).get("description", description)
            t = t.type
            continue
        if isinstance(t, msgspec.inspect.UnionType):
            non_null = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
            if len(non_null) == 1:
                t = non_null[0]
                constraints["nullable"] = True
                continue
        break
    if isinstance(t, msgspec.inspect.Metadata):  # pragma: no cover - unwrapped above
        t = t.type
    kind = type(t).__name__.removesuffix("Type").lower()
    info: dict[str, Any] = {"name": field.name, "type": kind, "required": field.required}
    if isinstance(t, msgspec.inspect.LiteralType):
        info["type"] = "enum"
        info["values"] = list(t.values)
    for attr in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
        value = getattr(t, attr, None)
        if value is not None:
            constraints[attr] = value
    if not field.required:
        info["default"] = None if field.default is msgspec.NODEFAULT else field.default
    if constraints:
        info["constraints"] = constraints
    if description:
        info["description"] = description
    return info


def describe(op: OpDef) -> dict[str, Any]:
    """One op as the catalogue lists it: name, queue, kind, summary and params."""
    info = msgspec.inspect.type_info(op.params)
    assert isinstance(info, msgspec.inspect.StructType)
    return {
        "op": op.name,
        "queue": op.queue,
        "kind": op.kind,
        "summary": op.summary,
        "params": [_param(f) for f in info.fields],
    }


def catalogue() -> list[dict[str, Any]]:
    """Every registered op, described (computed once per set of registered ops)."""
    return _described(tuple(OPS.values()))


@functools.cache
def _described(ops: tuple[OpDef, ...]) -> list[dict[str, Any]]:
    return [describe(op) for op in ops]


@get("/api/v1/operations", tags=["operations"], summary="The op catalogue")
async def operations() -> list[dict[str, Any]]:
    """Every op with its params, constraints and defaults."""
    return catalogue()

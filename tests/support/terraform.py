"""Terraform module directories parsed with python-hcl2, and reading their blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import hcl2

REPO = Path(__file__).resolve().parents[2]


TERRAFORM = REPO / "terraform"


_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


def parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


class Stack:
    """All top-level blocks of one Terraform module directory, merged across its .tf files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.resources: dict[str, dict[str, dict[str, Any]]] = {}
        self.data: dict[str, dict[str, dict[str, Any]]] = {}
        self.ephemerals: dict[str, dict[str, dict[str, Any]]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.modules: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.terraform: list[dict[str, Any]] = []
        self.providers: dict[str, dict[str, Any]] = {}
        for path in sorted(directory.glob("*.tf")):
            parsed = parse(path)
            for kind, target in (
                ("resource", self.resources),
                ("data", self.data),
                ("ephemeral", self.ephemerals),
            ):
                for entry in parsed.get(kind, []):
                    for type_, named in entry.items():
                        target.setdefault(type_, {}).update(named)
            for kind, target in (
                ("variable", self.variables),
                ("output", self.outputs),
                ("module", self.modules),
                ("provider", self.providers),
            ):
                for entry in parsed.get(kind, []):
                    target.update(entry)
            for entry in parsed.get("locals", []):
                self.locals.update(entry)
            self.terraform.extend(parsed.get("terraform", []))

    def resource(self, type_: str, name: str) -> dict[str, Any]:
        assert name in self.resources.get(type_, {}), (
            f"{self.directory.name}: missing {type_}.{name}"
        )
        return self.resources[type_][name]

    def default(self, variable: str) -> Any:
        assert variable in self.variables, f"{self.directory.name}: missing variable {variable}"
        assert "default" in self.variables[variable], f"variable {variable} has no default"
        return self.variables[variable]["default"]

    def validation_conditions(self, variable: str) -> list[str]:
        return [rule["condition"] for rule in self.variables[variable].get("validation", [])]


def one(body: dict[str, Any], block: str) -> dict[str, Any]:
    """The single nested block `block` of a parsed body."""
    blocks = body.get(block)
    assert isinstance(blocks, list) and len(blocks) == 1, (
        f"expected exactly one {block} block, got {blocks!r}"
    )
    return cast("dict[str, Any]", blocks[0])


def expr(reference: str) -> str:
    """How python-hcl2 renders a bare expression such as var.x."""
    return "${" + reference + "}"

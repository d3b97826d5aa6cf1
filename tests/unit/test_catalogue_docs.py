"""docs/api.md's op reference is the op registry's (through the API's own catalogue), so it
cannot drift; every op and param is described; the README's first example does what it says.

Regenerate the reference with ``python -m tests.unit.test_catalogue_docs``.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, cast

import msgspec
from PIL import Image

from pixtools.api.catalogue import catalogue
from pixtools.imaging import render_output
from pixtools.jobspec.job import parse_spec
from tests.support.images import jpeg_bytes

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
BEGIN, END = "<!-- ops:begin -->\n", "<!-- ops:end -->"


def _type(param: dict[str, Any]) -> str:
    if param["type"] == "enum":
        return " \\| ".join(f"`{v}`" for v in param["values"])
    return cast(str, param["type"])


def _default(param: dict[str, Any]) -> str:
    if param["required"]:
        return "required"
    return f"`{json.dumps(param['default'])}`"


def ops_markdown() -> str:
    """The op reference of docs/api.md, from ``GET /api/v1/operations``'s catalogue."""
    out: list[str] = []
    for op in catalogue():
        out.append(f"#### `{op['op']}` (queue `{op['queue']}`, {op['kind']})\n")
        out.append(f"{op['summary']}\n")
        if not op["params"]:
            out.append("No params.\n")
            continue
        out.append("| param | type | default | meaning |\n|---|---|---|---|")
        for p in op["params"]:
            out.append(f"| `{p['name']}` | {_type(p)} | {_default(p)} | {p['description']} |")
        out.append("")
    return "\n".join(out)


def test_api_doc_op_reference_matches_the_registry() -> None:
    doc = API_DOC.read_text(encoding="utf-8")
    assert BEGIN in doc and END in doc
    section = doc.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section == ops_markdown(), "regenerate: python -m tests.unit.test_catalogue_docs"


def test_every_op_and_param_is_described() -> None:
    for op in catalogue():
        assert op["summary"].strip(), op["op"]
        for p in op["params"]:
            assert p.get("description", "").strip(), (op["op"], p["name"])


def test_the_api_doc_is_the_whole_contract_in_the_repo() -> None:
    doc = API_DOC.read_text(encoding="utf-8")
    assert "shared/" not in doc and "CONTRACT.md" not in doc
    for heading in (
        "## The job spec",
        "## Statuses",
        "## Routes",
        "## Errors",
        "## Webhooks",
        "## Command line",
        "## Configuration",
        "## Storage layout",
    ):
        assert f"\n{heading}" in doc, heading


def test_readme_first_example_produces_what_it_says() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    raw = re.search(r"-F 'spec=(\{.*?\})' \\", readme, re.S)
    assert raw is not None
    spec = parse_spec(raw.group(1).replace("\n", ""))
    steps = spec.outputs[0].steps

    def size(w: int, h: int, upscale: bool = False) -> tuple[int, int]:
        use = list(steps)
        if upscale:
            use[0] = msgspec.structs.replace(use[0], upscale=True)
        out = render_output(jpeg_bytes(w, h), use, max_pixels=50_000_000)
        assert out.data is not None
        return Image.open(io.BytesIO(out.data)).size

    times = "\N{MULTIPLICATION SIGN}"
    assert f"320{times}320" in readme and size(1200, 800) == (320, 320)
    said = f"a 300{times}200 photo gives 200{times}200"
    assert said in readme and size(300, 200) == (200, 200)
    assert '"upscale": true' in readme and size(300, 200, upscale=True) == (320, 320)


if __name__ == "__main__":
    text = API_DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    API_DOC.write_text(head + BEGIN + ops_markdown() + END + rest.split(END, 1)[1])

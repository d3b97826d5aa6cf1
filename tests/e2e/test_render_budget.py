"""The render memory budget in a real worker (#14.6): ``pixtools dev`` with a budget smaller
than one output's estimate runs a job of several such outputs one at a time, to the end
(an output larger than the budget runs alone; none waits forever)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from pixtools.imaging.pipeline import render_bytes
from pixtools.jobspec.job import parse_spec
from tests.e2e.test_imaging_submit import tiny_png
from tests.support.dev import start_dev
from tests.support.processes import Stack, wait_job

BUDGET_MB = 64


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_dev(
        tmp_path_factory.mktemp("budget"),
        render_memory_mb=str(BUDGET_MB),
        worker_threads="4",
    )
    try:
        yield stack
    finally:
        stack.stop_all()


async def test_outputs_over_the_budget_take_turns_and_all_finish(server: Stack) -> None:
    outputs = [
        {
            "name": f"o{i}",
            "steps": [
                {"op": "resize", "width": 2600, "height": 2600, "fit": "fill", "upscale": True},
                {"op": "convert", "format": fmt},
            ],
        }
        for i, fmt in enumerate(["png", "webp", "jpeg", "png", "gif", "webp"])
    ]
    spec = {"outputs": outputs}
    for out in parse_spec(json.dumps(spec)).outputs:  # each alone is over the budget
        assert render_bytes(out.steps, "png", (1, 1)) > BUDGET_MB * 2**20
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        resp = await client.post(
            "/api/v1/jobs",
            files={"file": ("one.png", tiny_png(), "image/png")},
            data={"spec": json.dumps(spec)},
        )
        assert resp.status_code == 202, resp.text
        done = await wait_job(client, resp.json()["id"], timeout=240)
    assert done["status"] == "succeeded", done
    assert {(o["width"], o["height"]) for o in done["outputs"]} == {(2600, 2600)}
    assert all(o["attempts"] == 1 for o in done["outputs"]), done["outputs"]

"""A schema-driven fuzz of the running API against its own /openapi.json (bounded).

Schemathesis generates requests from the OpenAPI document, valid and not (positive and
negative modes), and checks that no answer is a server error, that every status is one the
route documents, and that content types, documented headers and JSON bodies match their
schemas. A real ``pixtools dev`` process answers. Most requests on a job's paths name real
jobs (one finished with outputs, previews and an archive; one whose output failed), so the
fuzz reaches downloads, previews, retry, cancel and delete, not only their 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from tests.support.dev import start_dev
from tests.support.images import jpeg_bytes, png_with_corrupt_pixels

OUTPUTS = ["thumb", "zip-me", "nope"]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stack = start_dev(tmp_path_factory.mktemp("fuzz"), rate_limit_per_minute="0")
    try:
        yield stack.base_url
    finally:
        stack.stop_all()


def _seconds(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def _job(base_url: str, image: bytes, spec: dict[str, Any]) -> str:
    resp = httpx.post(
        base_url + "/api/v1/jobs?wait=30",
        files={"file": ("a.png", image)},
        data={"spec": json.dumps(spec)},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text  # finished within the wait
    return str(resp.json()["id"])


def test_every_answer_is_documented_and_no_answer_is_a_server_error(base_url: str) -> None:
    steps = [{"op": "resize", "width": 16}]
    jobs = [
        _job(
            base_url,
            jpeg_bytes(64, 48),
            {
                "outputs": [{"name": "thumb", "steps": steps}, {"name": "zip-me", "steps": steps}],
                "archive": True,
            },
        ),
        _job(base_url, png_with_corrupt_pixels(), {"outputs": [{"name": "thumb", "steps": steps}]}),
    ]
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    # Deleting the real jobs last keeps them for every other operation.
    operations.sort(key=lambda op: op.method.upper() == "DELETE" and "{job_id}" in op.path)
    tested = 0
    for operation in operations:
        cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        # 30 examples x 21 operations, both modes: about 15 s here; bounded for CI.
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=cases, pick=st.integers(0, 3), output=st.sampled_from(OUTPUTS))
        def run(case: Any, pick: int, output: str) -> None:
            path = case.path_parameters or {}
            if "job_id" in path and pick < len(jobs):  # a real job, most of the time
                path["job_id"] = jobs[pick]
                if "name" in path:
                    path["name"] = output
            if case.query and _seconds(case.query.get("wait")) > 1:
                case.query["wait"] = 1  # a valid long wait would hold the fuzz (bad ones stay)
            case.call_and_validate(checks=checks, timeout=30)

        run()
        tested += 1
    assert tested >= 21  # every documented operation was fuzzed

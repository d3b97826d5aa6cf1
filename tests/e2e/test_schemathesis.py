"""A schema-driven fuzz of the running API against its own /openapi.json (bounded).

Schemathesis generates requests from the OpenAPI document, valid and not, and checks that
no answer is a server error, that every status is one the route documents, and that
content types and documented headers match. A real ``pixtools dev`` process answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from tests.support.dev import start_dev


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stack = start_dev(tmp_path_factory.mktemp("fuzz"), rate_limit_per_minute="0")
    try:
        yield stack.base_url
    finally:
        stack.stop_all()


def test_every_answer_is_documented_and_no_answer_is_a_server_error(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
    ]
    tested = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()

        # max_examples x 15 operations: about a minute here; bounded for CI.
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(checks=checks)

        run()
        tested += 1
    assert tested >= 12  # every documented operation was fuzzed

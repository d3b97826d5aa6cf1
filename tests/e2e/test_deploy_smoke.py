"""The deploy's smoke test (scripts/deploy/deploy.py) against a real PixTools stack.

`task deploy` ends by submitting a job through the ALB, waiting for it with ?wait= and fetching
its output; here the same code runs against the api and workers on the real services.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

import httpx
import pytest

from tests.support.keys import make_key
from tests.support.processes import ROOT, Stack

pytestmark = pytest.mark.services


def deploy_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy", ROOT / "scripts" / "deploy" / "deploy.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_smoke_test_processes_a_job_end_to_end(services_stack: Stack) -> None:
    deploy = deploy_module()
    key = make_key(services_stack, "deploy-smoke")
    job_id = deploy.smoke_test(services_stack.base_url, key)
    job = httpx.get(
        f"{services_stack.base_url}/api/v1/jobs/{job_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()
    assert job["status"] == "succeeded"
    assert [o["status"] for o in job["outputs"]] == ["succeeded"]


def test_the_smoke_test_fails_loudly_when_the_api_is_not_there(services_stack: Stack) -> None:
    deploy = deploy_module()
    with pytest.raises(deploy.Failed, match=r"POST /api/v1/jobs answered 4\d\d"):
        deploy.smoke_test(services_stack.base_url + "/not-the-api", "")

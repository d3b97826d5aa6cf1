"""Fixtures of the end-to-end tests shared by several modules: the embedded ``pixtools dev`` process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.processes import Stack, free_port, spawn_dev


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("embedded")
    # No PIXTOOLS_* service URLs at all: the embedded defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    env["PIXTOOLS_DATA_DIR"] = str(data)
    env["PIXTOOLS_WEBHOOK_ALLOW_PRIVATE"] = "true"  # the test's receiver is on loopback
    env["OTEL_TRACES_EXPORTER"] = "console"  # spans as JSON in the log, checked below
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    port = free_port()
    stack = Stack(f"http://127.0.0.1:{port}", {}, data)
    log = open(data / "dev.log", "wb")  # noqa: SIM115
    proc = spawn_dev(port, env, log, data)
    stack.procs["api"] = proc
    try:
        stack.wait_ready(90)
        yield stack
    finally:
        stack.stop_all()
        log.close()


@pytest.fixture
async def client(embedded: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=embedded.base_url, timeout=30) as c:
        yield c

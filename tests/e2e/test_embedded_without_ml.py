"""Embedded mode without the ML extra: a real ``pixtools dev`` in a Python where numpy and
onnxruntime cannot be imported (as on an install without the extra) starts, runs standard
ops, and refuses ML ops at submit, naming the step and what to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.images import jpeg_bytes
from tests.support.processes import Stack, free_port, wait_job

# Importing either module raises ModuleNotFoundError in this Python, as when the ml extra is
# not installed (the same trick as tests/e2e/test_cli.py's WITHOUT_ML).
WITHOUT_ML = (
    "import sys; sys.modules['numpy'] = None; sys.modules['onnxruntime'] = None; "
    "from pixtools.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def dev_without_ml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("without-ml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    env["PIXTOOLS_DATA_DIR"] = str(data)
    port = free_port()
    stack = Stack(f"http://127.0.0.1:{port}", {}, data)
    with open(data / "api.log", "wb") as log:
        stack.procs["api"] = subprocess.Popen(
            [sys.executable, "-c", WITHOUT_ML, "dev", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data,
            start_new_session=True,
        )
        try:
            stack.wait_ready(90)
            yield stack
        finally:
            stack.stop_all()


async def test_ml_ops_refused_when_this_process_cannot_run_them(dev_without_ml: Stack) -> None:
    spec = {
        "outputs": [
            {"name": "a", "steps": [{"op": "grayscale"}]},
            {"name": "b", "steps": [{"op": "resize", "width": 10}, {"op": "ocr"}]},
        ]
    }
    async with httpx.AsyncClient(base_url=dev_without_ml.base_url, timeout=30) as client:
        r = await client.post(
            "/api/v1/jobs",
            files={"file": ("a.jpg", jpeg_bytes(64, 64))},
            data={"spec": json.dumps(spec)},
        )
        assert r.status_code == 400, r.text
        assert r.json()["extra"]["field"] == "outputs[1].steps[1].op"
        assert "ml extra" in r.json()["detail"]
        assert "pip install" in r.json()["detail"]
        assert (await client.get("/api/v1/jobs")).json()["items"] == []  # nothing created
        # The standard ops still run, in this process's own workers.
        standard = {"outputs": [spec["outputs"][0]]}
        r = await client.post(
            "/api/v1/jobs",
            files={"file": ("a.jpg", jpeg_bytes(64, 64))},
            data={"spec": json.dumps(standard)},
        )
        assert r.status_code == 202, r.text
        done = await wait_job(client, r.json()["id"])
        assert done["status"] == "succeeded", done
    assert "ModuleNotFoundError" not in Path(dev_without_ml.log_dir / "api.log").read_text()

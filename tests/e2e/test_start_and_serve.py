"""What a user sees starting PixTools: `pixtools dev` on a terminal (readable log lines, the
absolute data folder), /health telling the truth about AVIF, /favicon.ico, described ops,
the private-webhook refusal naming its setting, and an API whose database is missing
stopping at once with one line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from pixtools.imaging.decode import avif_codec
from tests.support.images import jpeg_bytes
from tests.support.processes import free_port, wait_for

READY = re.compile(r"pixtools api ready")


@contextlib.contextmanager
def dev_on_a_terminal(cwd: Path, **env: str) -> Iterator[tuple[str, list[str]]]:
    """`pixtools dev` with stdout and stderr on a pseudo-terminal, started in ``cwd`` with no
    PIXTOOLS_* variables but ``env``; yields its URL and the lines it printed so far."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixtools.cli", "dev", "--port", str(port)],
        env={**base, **env},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        start_new_session=True,
    )
    os.close(slave)
    lines: list[str] = []
    buf = b""

    def read() -> None:
        nonlocal buf
        while select.select([master], [], [], 0.05)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
        *done, buf = buf.split(b"\n")
        lines.extend(line.decode(errors="replace").rstrip("\r") for line in done)

    def ready() -> bool:
        read()
        return any(READY.search(line) for line in lines)

    try:
        wait_for(ready, 90, "pixtools dev ready", interval=0.1)
        yield f"http://127.0.0.1:{port}", lines
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        os.close(master)


def test_dev_on_a_terminal(tmp_path: Path) -> None:
    with dev_on_a_terminal(tmp_path) as (url, lines):
        # The default data folder `.pixtools`, made absolute from where it was started.
        assert f"data folder: {tmp_path.resolve() / '.pixtools'}" in lines
        assert f"object store: local folder {tmp_path.resolve() / '.pixtools' / 'objects'}" in lines
        log_lines = [line for line in lines if "pixtools api ready" in line]
        assert log_lines and not log_lines[0].lstrip().startswith("{"), log_lines
        assert re.match(
            r"\d\d:\d\d:\d\d INFO  pixtools\.api\.app: pixtools api ready", log_lines[0]
        )

        # Before any image was processed in this process: /health knows AVIF works.
        health = httpx.get(f"{url}/health", timeout=30).json()
        assert avif_codec() is not None  # this machine's Pillow can write AVIF at all
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, "AVIF")
        assert health["pillow"]["features"]["avif"] is True

        icon = httpx.get(f"{url}/favicon.ico", timeout=30)
        assert icon.status_code == 200
        assert icon.headers["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon")
        assert Image.open(io.BytesIO(icon.content)).format == "ICO"

        ops = httpx.get(f"{url}/api/v1/operations", timeout=30).json()
        for op in ops:
            assert op["summary"].strip(), op
            for param in op["params"]:
                assert param.get("description", "").strip(), (op["op"], param)

        spec = {
            "outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}],
            "webhook_url": "http://127.0.0.1:9/hook",
        }
        refused = httpx.post(
            f"{url}/api/v1/jobs",
            files={"file": ("a.jpg", jpeg_bytes(32, 32))},
            data={"spec": json.dumps(spec)},
            timeout=30,
        )
        assert refused.status_code == 400
        assert "PIXTOOLS_WEBHOOK_ALLOW_PRIVATE=true" in refused.json()["detail"]


def test_dev_on_a_terminal_logs_json_when_asked(tmp_path: Path) -> None:
    with dev_on_a_terminal(tmp_path, PIXTOOLS_LOG_FORMAT="json") as (_url, lines):
        ready = [line for line in lines if "pixtools api ready" in line]
        assert json.loads(ready[0])["msg"] == "pixtools api ready (embedded=True)"


@pytest.mark.services
def test_api_without_its_database_stops_at_once_with_one_line(
    services_env: dict[str, str],
) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    url = services_env["PIXTOOLS_DATABASE_URL"].rsplit("/", 1)[0] + "/pixtools_no_such_db"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pixtools.cli", "api", "--port", str(free_port())],
        env={**base, **services_env, "PIXTOOLS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "startup complete" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "pixtools api: cannot use the database postgresql+asyncpg://postgres@127.0.0.1:5432/"
        'pixtools_no_such_db: database "pixtools_no_such_db" does not exist'
    ], proc.stderr
    print(f"refused in {time.monotonic() - started:.1f} s")

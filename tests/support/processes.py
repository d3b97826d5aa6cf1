"""Real ``pixtools`` processes and waiting on them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_dev(port: int, env: dict[str, str], log: IO[bytes], cwd: Path) -> subprocess.Popen[bytes]:
    """``pixtools dev`` on ``port`` as a process group of its own, its output into ``log``
    (closed by the caller when the process ends)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pixtools.cli", "dev", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,
    )


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Stack:
    """Real `pixtools` processes (api and workers) with their logs."""

    base_url: str
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixtools.cli", *args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, *, kill: bool = False) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            return httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200

        try:
            wait_for(ready, timeout, "api /readyz")
        except TimeoutError:
            raise TimeoutError("api not ready:\n" + self.logs("api")) from None


async def wait_job(
    client: httpx.AsyncClient,
    job_id: str,
    timeout: float = 60,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Long-poll a job until it is terminal; return it."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        wait = max(0.0, min(10.0, deadline - time.monotonic()))
        resp = await client.get(
            f"/api/v1/jobs/{job_id}", params={"wait": f"{wait:.1f}"}, headers=headers
        )
        assert resp.status_code == 200, resp.text
        job = resp.json()
        if job["status"] in ("succeeded", "partial", "failed", "canceled"):
            return job
        await asyncio.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {job.get('status')} after {timeout}s: {job}")


@contextlib.contextmanager
def frozen_workers(stack: Stack) -> Iterator[None]:
    """SIGSTOP both workers of ``stack``: nothing is processed, no heartbeat is sent, and no
    reconciler pass runs (each worker runs them) until they continue."""
    pids = [stack.procs[n].pid for n in ("worker-standard", "worker-ml")]
    for pid in pids:
        os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.killpg(pid, signal.SIGCONT)

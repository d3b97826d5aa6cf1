"""A PixTools services stack for the benchmarks: real processes on this machine's services.

``running_stack()`` creates a PostgreSQL database and a RabbitMQ vhost of its own, starts
``pixtools api`` and the requested ``pixtools worker`` processes with the **local-folder
object store** (a local S3 emulator would spend the CPU we are measuring), and removes
everything afterwards. ``output_timings()`` reads each output's timestamps from the
database: the server's own clock, not the client's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

PG_ADMIN = "postgresql://postgres@127.0.0.1/postgres"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BenchStack:
    base_url: str
    database_url: str
    workdir: Path
    pids: dict[str, int] = field(default_factory=dict)


class RssSampler(threading.Thread):
    """Peak RSS of each process tree (parent + children), sampled every 50 ms.

    The sampler shares the cores it measures, so it is cheap: the trees are listed once a
    second (psutil's recursive children scan all of /proc: ~4 ms) and each tick reads only
    ``/proc/<pid>/statm`` of the known processes. (Scanning every tick cost the pipeline
    benchmark ~6 % of the machine, booked as "client" CPU.)
    """

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self.stop_flag = threading.Event()

    @staticmethod
    def _tree(pid: int) -> list[int]:
        try:
            root = psutil.Process(pid)
            return [pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.Error:
            return []

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                return int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            return 0  # gone since the tree was listed

    def run(self) -> None:
        trees: dict[str, list[int]] = {}
        listed = 0.0
        while not self.stop_flag.is_set():
            if time.monotonic() - listed >= 1.0:
                trees = {name: self._tree(pid) for name, pid in self.pids.items()}
                listed = time.monotonic()
            for name, tree in trees.items():
                self.peak[name] = max(self.peak[name], sum(self._rss(p) for p in tree))
            time.sleep(0.05)

    def stop(self) -> dict[str, int]:
        self.stop_flag.set()
        self.join(2)
        return self.peak


@contextlib.contextmanager
def running_stack(workers: dict[str, list[str]], *, api_workers: int = 1) -> Iterator[BenchStack]:
    """Start the api and ``workers`` (name → extra ``pixtools worker`` args); yield the stack."""
    run_id = secrets.token_hex(3)
    db = vhost = f"pixtools_bench_{run_id}"
    subprocess.run(
        ["psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{db}"'], check=True, capture_output=True
    )
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="pixtools-bench-"))
    database_url = f"postgresql+asyncpg://postgres@127.0.0.1/{db}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")},
        "PIXTOOLS_DATABASE_URL": database_url,
        "PIXTOOLS_RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "PIXTOOLS_DATA_DIR": str(workdir),
        "PIXTOOLS_LOG_LEVEL": "WARNING",
        "PIXTOOLS_RATE_LIMIT_PER_MINUTE": "0",
    }
    port = free_port()
    cli = [sys.executable, "-m", "pixtools.cli"]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
        commands = {
            "api": [
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(api_workers),
            ]
        }
        commands |= {name: ["worker", *args] for name, args in workers.items()}
        for name, args in commands.items():
            log = (workdir / f"{name}.log").open("wb")
            procs[name] = subprocess.Popen(
                [*cli, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit(f"PixTools did not become ready; logs in {workdir}")
        time.sleep(2)  # worker processes boot (and the ML worker preloads its models)
        yield BenchStack(base, database_url, workdir, {n: p.pid for n, p in procs.items()})
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(
            ["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'],
            capture_output=True,
        )
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


async def output_timings(database_url: str) -> list[dict[str, Any]]:
    """Per output: job id, name, created (job accepted), published (the broker confirmed the
    relay's publish), started, finished, job_finished (epoch seconds)."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT j.id::text AS id, o.name, extract(epoch FROM j.created_at) AS created, "
            "extract(epoch FROM o.started_at) AS started, extract(epoch FROM o.finished_at) AS finished, "
            "extract(epoch FROM j.finished_at) AS job_finished, "
            # When the relay's publish of the output's message was confirmed by the broker.
            "(SELECT extract(epoch FROM min(ob.sent_at)) FROM outbox ob WHERE ob.job_id = j.id "
            "AND ob.actor LIKE 'process_output%' AND ob.args::jsonb ->> 1 = o.name) AS published "
            "FROM jobs j JOIN outputs o ON o.job_id = j.id"
        )
    finally:
        await conn.close()
    return [
        {
            k: (float(v) if k not in ("id", "name") and v is not None else v)
            for k, v in dict(r).items()
        }
        for r in rows
    ]

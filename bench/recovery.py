"""How long a job takes to finish after its worker is killed with SIGKILL mid-output, with
nobody running `pixtools reconcile`: the durability figure of docs/runbooks.md.

Services mode: `pixtools api` and one `pixtools worker --queues standard` on this machine's
PostgreSQL and RabbitMQ (a database and vhost of its own, the local-folder store). Each run
submits a job whose one output renders for a few seconds, kills the worker (SIGKILL to its
process group) a moment into the render, starts it again and waits for the job. Printed per
run: kill -> the takeover started (the output's second attempt, the server's clock) and
kill -> job finished; the floor is ``stale_after`` after the dead attempt's last heartbeat.

Embedded mode: `pixtools dev` with four such jobs on two worker threads, killed and started
again; kill -> every job finished.

    python bench/recovery.py [--runs 3] [--heartbeat 1] [--stale-after 6] [--embedded-runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from stack import PG_ADMIN, free_port  # bench/stack.py

SLOW = {
    "outputs": [
        {
            "name": "slow",
            # Seconds of work on pillow-simd as on Pillow (lossless WebP of sharpened noise,
            # about 2.7 s on simd): the kill must land inside the render on both builds.
            "steps": [
                {"op": "sharpen", "amount": 10, "radius": 10},
                {"op": "convert", "format": "webp", "lossless": True},
            ],
        }
    ]
}
CLI = [sys.executable, "-m", "pixtools.cli"]


def noisy_jpeg(w: int, h: int) -> bytes:
    arr = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(30)


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{base} did not become ready")


def submit(client: httpx.Client, data: bytes) -> str:
    r = client.post(
        "/api/v1/jobs", files={"file": ("a.jpg", data)}, data={"spec": json.dumps(SLOW)}
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def until_running(client: httpx.Client, jid: str) -> None:
    while client.get(f"/api/v1/jobs/{jid}").json()["outputs"][0]["status"] != "running":
        time.sleep(0.02)


def until_done(client: httpx.Client, jid: str) -> dict[str, object]:
    while True:
        job: dict[str, object] = client.get(f"/api/v1/jobs/{jid}", params={"wait": "10"}).json()
        if job["status"] in ("succeeded", "partial", "failed", "canceled"):
            return job


async def started_at(database_url: str, jid: str) -> float:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        value = await conn.fetchval(
            "SELECT extract(epoch FROM started_at) FROM outputs WHERE job_id = $1::uuid", jid
        )
    finally:
        await conn.close()
    return float(value)


@contextlib.contextmanager
def services(env_extra: dict[str, str]) -> Iterator[tuple[str, dict[str, str], Path]]:
    run_id = secrets.token_hex(3)
    name = f"pixtools_bench_recovery_{run_id}"
    subprocess.run(["psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{name}"'], check=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="pixtools-bench-recovery-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")},
        "PIXTOOLS_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1/{name}",
        "PIXTOOLS_RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:5672/{name}",
        "PIXTOOLS_DATA_DIR": str(workdir),
        "PIXTOOLS_RATE_LIMIT_PER_MINUTE": "0",
        **env_extra,
    }
    try:
        subprocess.run([*CLI, "migrate"], env=env, check=True, capture_output=True)
        yield name, env, workdir
    finally:
        subprocess.run(
            ["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
            capture_output=True,
        )
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


def services_runs(runs: int, env_extra: dict[str, str], source: bytes) -> list[tuple[float, float]]:
    results = []
    with services(env_extra) as (_name, env, workdir):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = start(["api", "--port", str(port)], env, workdir / "api.log")
        worker_args = ["worker", "--queues", "standard", "--threads", "2"]
        worker = start(worker_args, env, workdir / "worker.log")
        try:
            wait_ready(base)
            with httpx.Client(base_url=base, timeout=60) as client:
                for i in range(runs):
                    jid = submit(client, source)
                    until_running(client, jid)
                    time.sleep(0.5)  # into the render: seconds of it remain
                    killed = time.time()
                    kill(worker)
                    worker = start(worker_args, env, workdir / "worker.log")
                    job = until_done(client, jid)
                    done = time.time()
                    out = job["outputs"][0]  # type: ignore[index]
                    took = asyncio.run(started_at(env["PIXTOOLS_DATABASE_URL"], jid))
                    print(
                        f"services run {i + 1}: {job['status']}, attempts {out['attempts']}; "
                        f"kill -> takeover {took - killed:5.1f} s, kill -> done {done - killed:5.1f} s",
                        flush=True,
                    )
                    results.append((took - killed, done - killed))
        finally:
            kill(worker, signal.SIGTERM)
            kill(api, signal.SIGTERM)
    return results


def embedded_runs(runs: int, env_extra: dict[str, str], source: bytes) -> list[float]:
    results = []
    for i in range(runs):
        workdir = Path(tempfile.mkdtemp(prefix="pixtools-bench-dev-"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")},
            "PIXTOOLS_DATA_DIR": str(workdir),
            "PIXTOOLS_WORKER_THREADS": "2",
            **env_extra,
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        dev = start(["dev", "--port", str(port)], env, workdir / "dev.log")
        try:
            wait_ready(base)
            with httpx.Client(base_url=base, timeout=60) as client:
                ids = [submit(client, source) for _ in range(4)]
                until_running(client, ids[0])
                time.sleep(0.5)  # into the render: seconds of it remain
                killed = time.time()
                kill(dev)
                dev = start(["dev", "--port", str(port)], env, workdir / "dev.log")
                wait_ready(base)
                ready = time.time()
                jobs = [until_done(client, jid) for jid in ids]
                done = time.time()
            states = sorted({str(j["status"]) for j in jobs})
            print(
                f"embedded run {i + 1}: 4 jobs {'/'.join(states)}; kill -> restarted "
                f"{ready - killed:4.1f} s, kill -> all done {done - killed:5.1f} s",
                flush=True,
            )
            results.append(done - killed)
        finally:
            kill(dev, signal.SIGTERM)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--embedded-runs", type=int, default=2)
    ap.add_argument("--heartbeat", type=float, default=1.0)
    ap.add_argument("--stale-after", type=float, default=6.0)
    args = ap.parse_args()
    env_extra = {
        "PIXTOOLS_HEARTBEAT_SECONDS": str(args.heartbeat),
        "PIXTOOLS_STALE_AFTER_SECONDS": str(args.stale_after),
        "PIXTOOLS_LOG_LEVEL": "INFO",
    }
    source = noisy_jpeg(3000, 2000)
    print(f"heartbeat {args.heartbeat} s, stale_after {args.stale_after} s", flush=True)
    if args.runs:
        res = services_runs(args.runs, env_extra, source)
        takeover = statistics.median(r[0] for r in res)
        done = statistics.median(r[1] for r in res)
        print(f"services median: kill -> takeover {takeover:.1f} s, kill -> done {done:.1f} s")
    if args.embedded_runs:
        emb = embedded_runs(args.embedded_runs, env_extra, source)
        print(f"embedded median: kill -> all 4 done {statistics.median(emb):.1f} s")


if __name__ == "__main__":
    main()

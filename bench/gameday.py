"""Spot game day, simulated on this machine: the node goes away under load, twice.

A real services stack (api, a standard and an ML worker pool as processes, this machine's
PostgreSQL and RabbitMQ, local-folder store) takes a steady load of small jobs from closed-loop
clients. Then:

* **notice**: the two-minute warning's drain path. Every process gets SIGTERM at once, as the
  drain's pod deletions send it, and has its pod's grace period (api 60 s, workers 100 s) to
  finish; then everything starts again (the pods rescheduled).
* **no notice**: every process is SIGKILLed at once and the broker's state is wiped (the vhost
  deleted and created again: a replacement node's RabbitMQ starts empty); then everything starts
  again, and the reconciler runs on its schedule (``--reconcile-every``; the cluster's CronJob
  runs every minute) and publishes the lost work again.

Recorded per scenario: the timeline (kill, processes back, first job done after, backlog
drained), submits refused while down (what a user saw), jobs lost (accepted, never finished:
must be 0), outputs processed more than once (``attempts > 1``: an object written again, with
the same deterministic key), and a plot. Writes docs/game-day.json and docs/game-day.png.

    python bench/gameday.py [--clients 6] [--before 20] [--after 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from pipeline import multipart_body, photo_like_jpeg  # bench/pipeline.py
from stack import PG_ADMIN, free_port  # bench/stack.py

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SPEC = json.dumps(
    {
        "outputs": [
            {
                "name": "thumb",
                "steps": [{"op": "resize", "width": 256}, {"op": "convert", "format": "webp"}],
            }
        ]
    }
)
GRACE = {"api": 60.0, "worker-standard": 100.0, "worker-ml": 100.0}  # the pods' grace periods


class Node:
    """The processes of one simulated node, restartable."""

    def __init__(self, env: dict[str, str], port: int, workdir: Path) -> None:
        self.env, self.port, self.workdir = env, port, workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        cli = [sys.executable, "-m", "pixtools.cli"]
        self.commands = {
            "api": [*cli, "api", "--host", "127.0.0.1", "--port", str(port)],
            "worker-standard": [*cli, "worker", "--queues", "standard", "--threads", "5"],
            "worker-ml": [*cli, "worker", "--queues", "ml", "--threads", "1"],
        }

    def start(self) -> None:
        for name, cmd in self.commands.items():
            log = (self.workdir / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def signal_all(self, sig: signal.Signals) -> None:
        """SIGTERM goes to each container's main process only (as the kubelet sends it: the
        Dramatiq parent then stops its workers itself); SIGKILL takes every process at once."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGKILL:
                    os.killpg(proc.pid, sig)
                else:
                    os.kill(proc.pid, sig)

    def wait_exit(self) -> dict[str, float]:
        """Seconds each process took to exit (SIGKILL after its grace period)."""
        started = time.monotonic()
        took: dict[str, float] = {}
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.0, GRACE[name] - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            took[name] = round(time.monotonic() - started, 1)
        return took

    def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200
        return False


def note(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


class Load:
    """Closed-loop clients; every submit and every finished job with its time."""

    def __init__(self, base_url: str, clients: int) -> None:
        self.base_url, self.clients = base_url, clients
        self.events: list[tuple[float, str]] = []  # (time, accepted|refused|done)
        self.accepted: set[str] = set()
        self.running = True

    async def run(self) -> None:
        body, ctype = multipart_body(photo_like_jpeg(640, 480), SPEC)
        async with aiohttp.ClientSession(
            base_url=self.base_url, timeout=aiohttp.ClientTimeout(total=30)
        ) as client:

            async def loop() -> None:
                while self.running:
                    try:
                        async with client.post(
                            "/api/v1/jobs", data=body, headers={"content-type": ctype}
                        ) as r:
                            answer = await r.json(content_type=None)
                            ok = r.status == 202
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    now = time.time()
                    if not ok:
                        self.events.append((now, "refused"))
                        await asyncio.sleep(1)  # a user retrying
                        continue
                    self.events.append((now, "accepted"))
                    self.accepted.add(answer["id"])
                    await asyncio.sleep(0.5)

            await asyncio.gather(*(loop() for _ in range(self.clients)))


async def job_states(database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        jobs = await conn.fetch(
            "SELECT id::text AS id, status, extract(epoch FROM finished_at) AS done FROM jobs"
        )
        twice = await conn.fetchval("SELECT count(*) FROM outputs WHERE attempts > 1")
    finally:
        await conn.close()
    return {
        # extract(epoch ...) is numeric: a Decimal in asyncpg.
        "jobs": {r["id"]: (r["status"], float(r["done"]) if r["done"] else None) for r in jobs},
        "attempts_gt_1": twice,
    }


async def wait_until(predicate: Any, timeout: float, interval: float = 0.5) -> float | None:
    start = time.time()
    while time.time() - start < timeout:
        if await predicate():
            return time.time()
        await asyncio.sleep(interval)
    return None


async def scenario(
    name: str, node: Node, load: Load, env: dict[str, str], vhost: str, args: argparse.Namespace
) -> dict[str, Any]:
    await asyncio.sleep(args.before)
    kill = time.time()
    note(f"{name}: kill")
    if name == "notice":
        node.signal_all(signal.SIGTERM)
        exits = await asyncio.to_thread(node.wait_exit)
    else:
        node.signal_all(signal.SIGKILL)
        exits = await asyncio.to_thread(node.wait_exit)
        # The replacement node's RabbitMQ starts empty.
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
        )
    accepted_at_kill = set(load.accepted)
    note(f"{name}: every process gone ({exits}); starting again")
    node.start()

    async def ready() -> bool:
        return await asyncio.to_thread(node.ready)

    back = await wait_until(ready, 180)
    note(f"{name}: api ready again")
    reconcile_task = None
    if name == "no-notice":

        async def reconciler() -> None:
            while True:
                await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "pixtools.cli", "reconcile"],
                    env=env,
                    capture_output=True,
                )
                await asyncio.sleep(args.reconcile_every)

        reconcile_task = asyncio.create_task(reconciler())

    async def first_done() -> bool:
        states = await job_states(env["PIXTOOLS_DATABASE_URL"])
        return any(done and done > (back or kill) for _, done in states["jobs"].values())

    first = await wait_until(first_done, 300)
    note(f"{name}: first job done")

    async def drained() -> bool:
        states = await job_states(env["PIXTOOLS_DATABASE_URL"])
        return all(
            states["jobs"].get(j, ("", None))[0] in ("succeeded", "failed", "partial")
            for j in accepted_at_kill
        )

    backlog = await wait_until(drained, 600, 1)
    note(f"{name}: backlog drained")
    if reconcile_task is not None:
        reconcile_task.cancel()
    refused = [t for t, kind in load.events if kind == "refused" and t >= kill]
    return {
        "scenario": name,
        "kill": kill,
        "exit_seconds": exits,
        "processes_back_s": round(back - kill, 1) if back else None,
        "first_job_done_s": round(first - kill, 1) if first else None,
        "backlog_drained_s": round(backlog - kill, 1) if backlog else None,
        "accepted_before_kill": len(accepted_at_kill),
        "submits_refused": len(refused),
        "refused_window_s": round(max(refused) - min(refused), 1) if refused else 0.0,
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--before", type=float, default=20, help="seconds of load before each kill")
    ap.add_argument("--after", type=float, default=30, help="seconds of load after the last")
    ap.add_argument("--reconcile-every", type=float, default=60)
    ap.add_argument("--out", default=str(DOCS / "game-day.json"))
    args = ap.parse_args()
    run_id = secrets.token_hex(3)
    db = vhost = f"pixtools_gameday_{run_id}"
    subprocess.run(["psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{db}"'], check=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    workdir = Path(tempfile.mkdtemp(prefix="pixtools-gameday-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")},
        "PIXTOOLS_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1/{db}",
        "PIXTOOLS_RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "PIXTOOLS_DATA_DIR": str(workdir),
        "PIXTOOLS_LOG_LEVEL": "WARNING",
        "PIXTOOLS_RATE_LIMIT_PER_MINUTE": "0",
        # The cluster's values: a lost worker's output is stale after a minute.
        "PIXTOOLS_STALE_AFTER_SECONDS": "60",
    }
    subprocess.run([sys.executable, "-m", "pixtools.cli", "migrate"], env=env, check=True)
    port = free_port()
    node = Node(env, port, workdir)
    results: list[dict[str, Any]] = []
    node.start()
    try:
        if not await wait_until(lambda: asyncio.to_thread(node.ready), 120):
            raise SystemExit(f"stack did not start; logs in {workdir}")
        load = Load(f"http://127.0.0.1:{port}", args.clients)
        load_task = asyncio.create_task(load.run())
        started = time.time()
        for name in ("notice", "no-notice"):
            results.append(await scenario(name, node, load, env, vhost, args))
            print(json.dumps(results[-1]), flush=True)
        await asyncio.sleep(args.after)
        load.running = False
        await load_task

        async def all_done() -> bool:
            states = await job_states(env["PIXTOOLS_DATABASE_URL"])
            return all(states["jobs"].get(j, ("",))[0] == "succeeded" for j in load.accepted)

        await wait_until(all_done, 300, 1)
        states = await job_states(env["PIXTOOLS_DATABASE_URL"])
    finally:
        node.signal_all(signal.SIGTERM)
        await asyncio.to_thread(node.wait_exit)
        subprocess.run(["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'])
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost])
    lost = [j for j in load.accepted if states["jobs"].get(j, ("",))[0] != "succeeded"]
    summary = {
        "clients": args.clients,
        "reconcile_every_s": args.reconcile_every,
        "accepted": len(load.accepted),
        "jobs_lost": len(lost),
        "outputs_processed_more_than_once": states["attempts_gt_1"],
        "scenarios": results,
        "events": [(round(t - started, 2), kind) for t, kind in load.events],
        "done": sorted(
            round(done - started, 2)
            for j, (status, done) in states["jobs"].items()
            if j in load.accepted and done
        ),
    }
    Path(args.out).write_text(json.dumps(summary) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("events", "done")}, indent=1))
    plot(summary, started)
    if lost:
        raise SystemExit(f"FAILED: {len(lost)} accepted jobs never succeeded")


def plot(summary: dict[str, Any], started: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for kind, color in (("accepted", "tab:blue"), ("refused", "tab:red")):
        times = [t for t, k in summary["events"] if k == kind]
        ax.hist(times, bins=120, alpha=0.6, color=color, label=f"submits {kind}")
    ax.hist(summary["done"], bins=120, histtype="step", color="tab:green", label="jobs done")
    for s in summary["scenarios"]:
        t = s["kill"] - started
        ax.axvline(t, color="black", linestyle="--")
        ax.text(t, ax.get_ylim()[1] * 0.9, f" kill ({s['scenario']})", fontsize=8)
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("events per bin")
    ax.set_title("Spot game day (simulated): submits and completions")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "game-day.png", dpi=90)


if __name__ == "__main__":
    asyncio.run(main())

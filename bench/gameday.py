"""Spot game day, simulated on this machine: the node goes away under load, twice.

A real services stack (api, a standard and an ML worker pool as processes, this machine's
PostgreSQL and RabbitMQ, an S3 API served by a local moto server with bucket versioning on)
takes a steady load of small jobs from closed-loop clients. Then:

* **notice**: the two-minute warning's drain path. Every process gets SIGTERM at once, as the
  drain's pod deletions send it, and has its pod's grace period (api 60 s, workers 100 s) to
  finish; then everything starts again (the pods rescheduled).
* **no notice**: every process is SIGKILLed at once and the broker's state is wiped (the vhost
  deleted and created again: a replacement node's RabbitMQ starts empty); then everything starts
  again, and the reconciler runs on its schedule (``--reconcile-every``; the cluster's CronJob
  runs every minute) and publishes the lost work again. The object store is S3, off the node:
  it survives both.

Recorded per scenario: the timeline (kill, processes back, first job done after, backlog
drained), submits refused while down (what a user saw), jobs lost (accepted, never finished:
must be 0), outputs processed more than once (``attempts > 1``) and, from the bucket's version
list, how many times each object was written (every completed PUT is one version), and a plot.
Writes docs/game-day.json and docs/game-day.png.

Every process it starts (api, workers, moto, reconcile runs) ends with it: on success, on an
exception, on Ctrl-C, SIGTERM or SIGHUP (each in a process group of its own, killed as a group,
and a last sweep for any process carrying this run's marker), and, if the script itself is
SIGKILLed, the node processes by their parent-death signal.

    python bench/gameday.py [--clients 6] [--before 20] [--after 30] [--reconcile-every 60]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg
import boto3
import httpx
import psutil
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
TEARDOWN_GRACE = 15.0  # at the end of the run nothing is measured: no need to wait the pods' grace
MARK = "GAMEDAY_RUN"  # in the environment of every process this run starts
AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Reaper:
    """Every process this run starts, and the way to end them all whatever ends the run."""

    def __init__(self, run_id: str) -> None:
        self.mark = f"{run_id}:{os.getpid()}"  # the run, and the script that owns it
        self.groups: set[int] = set()

    def spawn(self, cmd: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        """A process group of its own (signalled apart from this script's), marked, and killed
        by the kernel if this script dies first (its parent-death signal survives the exec)."""
        proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", *cmd],
            env={**env, MARK: self.mark},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.groups.add(proc.pid)
        return proc

    @staticmethod
    def marked() -> Iterator[tuple[psutil.Process, str]]:
        """Every process carrying a game day's marker, with its value."""
        prefix = f"{MARK}=".encode()
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
                for entry in environ:
                    if entry.startswith(prefix):
                        yield proc, entry[len(prefix) :].decode()

    def kill_all(self) -> None:
        """SIGKILL every group started, then any process left with this run's marker (a child
        that made a session of its own, a reconcile run)."""
        for pgid in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        for proc, mark in self.marked():
            if mark == self.mark:
                with contextlib.suppress(psutil.Error):
                    proc.kill()

    def sweep_orphans(self) -> None:
        """What an earlier run left when it was SIGKILLed itself: the parent-death signal ends
        the processes it started, not their children (Dramatiq's worker processes)."""
        for proc, mark in self.marked():
            owner = int(mark.rsplit(":", 1)[1])
            with contextlib.suppress(psutil.Error):
                if not psutil.pid_exists(owner) or "gameday" not in " ".join(
                    psutil.Process(owner).cmdline()
                ):
                    note(f"killing {proc.pid}, left by an earlier game day run")
                    proc.kill()


class Node:
    """The processes of one simulated node, restartable."""

    def __init__(self, reaper: Reaper, env: dict[str, str], port: int, workdir: Path) -> None:
        self.reaper, self.env, self.port, self.workdir = reaper, env, port, workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        cli = [sys.executable, "-m", "pixtools.cli"]
        self.commands = {
            "api": [*cli, "api", "--host", "127.0.0.1", "--port", str(port)],
            "worker-standard": [*cli, "worker", "--queues", "standard", "--threads", "5"],
            "worker-ml": [*cli, "worker", "--queues", "ml", "--threads", "1"],
        }

    def start(self) -> None:
        for name, cmd in self.commands.items():
            with (self.workdir / f"{name}.log").open("ab") as log:
                self.procs[name] = self.reaper.spawn(cmd, self.env, log)

    def signal_all(self, sig: signal.Signals) -> None:
        """SIGTERM goes to each container's main process only (as the kubelet sends it: the
        Dramatiq parent then stops its workers itself); SIGKILL takes every process at once."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGKILL:
                    os.killpg(proc.pid, sig)
                else:
                    os.kill(proc.pid, sig)

    def wait_exit(self, grace: dict[str, float] = GRACE) -> dict[str, float]:
        """Seconds each process took to exit (its group SIGKILLed after its grace period; the
        group is SIGKILLed anyway once its main process is gone, so no child outlives it)."""
        started = time.monotonic()
        took: dict[str, float] = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, grace[name] - (time.monotonic() - started)))
            took[name] = round(time.monotonic() - started, 1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        return took

    def stop(self) -> None:
        """The end of the run: SIGTERM, a short grace, then every group SIGKILLed."""
        self.signal_all(signal.SIGTERM)
        self.wait_exit(dict.fromkeys(self.commands, TEARDOWN_GRACE))
        self.procs = {}

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
        redone = await conn.fetch("SELECT object_key, attempts FROM outputs WHERE attempts > 1")
    finally:
        await conn.close()
    return {
        # extract(epoch ...) is numeric: a Decimal in asyncpg.
        "jobs": {r["id"]: (r["status"], float(r["done"]) if r["done"] else None) for r in jobs},
        "redone": [(r["object_key"], r["attempts"]) for r in redone],
    }


async def wait_until(predicate: Any, timeout: float, interval: float = 0.5) -> float | None:
    start = time.time()
    while time.time() - start < timeout:
        if await predicate():
            return time.time()
        await asyncio.sleep(interval)
    return None


def reset_vhost(vhost: str, *, create: bool = True, delete: bool = True) -> None:
    if delete:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=create)
    if create:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
        )


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
        reset_vhost(vhost)  # the replacement node's RabbitMQ starts empty
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


# --- the object store: a moto server, one versioned bucket -----------------------------------


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=AWS["AWS_DEFAULT_REGION"],
        aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
    )


def start_s3(reaper: Reaper, workdir: Path, bucket: str) -> str:
    """A moto server (S3 is off the node: it outlives both kills) and a bucket with versioning
    on, so that every completed PUT leaves a version: the writes per key, counted exactly."""
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with (workdir / "moto.log").open("ab") as log:
        reaper.spawn(cmd, {**os.environ, **AWS}, log)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(endpoint + "/moto-api/", timeout=1).status_code < 500:
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"moto server did not start; log in {workdir}")
        time.sleep(0.3)
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return endpoint


def object_kind(key: str) -> str:
    if key.endswith(".preview.webp"):
        return "previews"
    return {"processed": "outputs", "raw": "sources", "archives": "archives"}.get(
        key.split("/", 1)[0], "other"
    )


def bucket_writes(endpoint: str, bucket: str) -> dict[str, list[tuple[float, str]]]:
    """Every key's versions (one per completed PUT): (last modified, ETag), oldest first."""
    versions: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for page in s3_client(endpoint).get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            versions[v["Key"]].append((v["LastModified"].timestamp(), v["ETag"]))
    return {key: sorted(vs) for key, vs in versions.items()}


def write_counts(
    versions: dict[str, list[tuple[float, str]]], kills: dict[str, float]
) -> dict[str, Any]:
    """Per kind of object: how many keys, the histogram of writes per key, the keys written
    more than once, and of those, which kill fell between their first and last write, and
    how many were written with the same bytes (the same ETag) each time."""
    by_kind: dict[str, Any] = {}
    for key, vs in versions.items():
        kind = by_kind.setdefault(
            object_kind(key),
            {
                "objects": 0,
                "writes_per_key": Counter(),
                "written_more_than_once": 0,
                "rewritten_across_kill": Counter(),
                "rewritten_with_identical_bytes": 0,
            },
        )
        kind["objects"] += 1
        kind["writes_per_key"][len(vs)] += 1
        if len(vs) > 1:
            kind["written_more_than_once"] += 1
            across = [name for name, t in kills.items() if vs[0][0] < t < vs[-1][0]]
            kind["rewritten_across_kill"][",".join(across) or "none"] += 1
            kind["rewritten_with_identical_bytes"] += len({etag for _, etag in vs}) == 1
    for kind in by_kind.values():
        kind["writes_per_key"] = {str(n): c for n, c in sorted(kind["writes_per_key"].items())}
        kind["rewritten_across_kill"] = dict(kind["rewritten_across_kill"])
    return by_kind


def redone_writes(
    redone: list[tuple[str | None, int]], versions: dict[str, list[tuple[float, str]]]
) -> dict[str, int]:
    """The outputs processed more than once (``attempts > 1``), by how many times their object
    was written: a killed attempt that died before its PUT left nothing to overwrite."""
    counts = Counter(len(versions.get(key or "", [])) for key, _ in redone)
    return {str(n): c for n, c in sorted(counts.items())}


# --- the run ------------------------------------------------------------------------------


def database_and_vhost(run_id: str) -> str:
    return f"pixtools_gameday_{run_id}"


def provision(run_id: str, reaper: Reaper, workdir: Path) -> dict[str, str]:
    db = vhost = database_and_vhost(run_id)
    bucket = f"pixtools-gameday-{run_id}"  # no underscores in a bucket's name
    subprocess.run(["psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{db}"'], check=True)
    reset_vhost(vhost, delete=False)
    endpoint = start_s3(reaper, workdir, bucket)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")},
        **AWS,
        "PIXTOOLS_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1/{db}",
        "PIXTOOLS_RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "PIXTOOLS_S3_BUCKET": bucket,
        "PIXTOOLS_S3_ENDPOINT_URL": endpoint,
        "PIXTOOLS_DATA_DIR": str(workdir),
        "PIXTOOLS_LOG_LEVEL": "WARNING",
        "PIXTOOLS_RATE_LIMIT_PER_MINUTE": "0",
        # The cluster's values: a lost worker's output is stale after a minute.
        "PIXTOOLS_STALE_AFTER_SECONDS": "60",
        MARK: reaper.mark,
    }
    subprocess.run([sys.executable, "-m", "pixtools.cli", "migrate"], env=env, check=True)
    return env


def deprovision(run_id: str) -> None:
    db = vhost = database_and_vhost(run_id)
    subprocess.run(["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'])
    reset_vhost(vhost, create=False)


async def run_game_day(
    node: Node, env: dict[str, str], args: argparse.Namespace
) -> tuple[Load, list[dict[str, Any]], float]:
    if not await wait_until(lambda: asyncio.to_thread(node.ready), 120):
        raise SystemExit(f"stack did not start; logs in {node.workdir}")
    load = Load(f"http://127.0.0.1:{node.port}", args.clients)
    load_task = asyncio.create_task(load.run())
    started = time.time()
    vhost = env["PIXTOOLS_RABBITMQ_URL"].rsplit("/", 1)[1]
    results: list[dict[str, Any]] = []
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
    return load, results, started


def summarise(
    args: argparse.Namespace,
    load: Load,
    results: list[dict[str, Any]],
    started: float,
    states: dict[str, Any],
    versions: dict[str, list[tuple[float, str]]],
) -> dict[str, Any]:
    lost = [j for j in load.accepted if states["jobs"].get(j, ("",))[0] != "succeeded"]
    writes = write_counts(versions, {s["scenario"]: s["kill"] for s in results})
    return {
        "clients": args.clients,
        "reconcile_every_s": args.reconcile_every,
        "accepted": len(load.accepted),
        "jobs_lost": len(lost),
        "outputs_processed_more_than_once": len(states["redone"]),
        "output_objects_written_more_than_once": writes.get("outputs", {}).get(
            "written_more_than_once", 0
        ),
        "redone_outputs_by_writes": redone_writes(states["redone"], versions),
        "object_writes": writes,
        "scenarios": results,
        "events": [(round(t - started, 2), kind) for t, kind in load.events],
        "done": sorted(
            round(done - started, 2)
            for j, (status, done) in states["jobs"].items()
            if j in load.accepted and done
        ),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--before", type=float, default=20, help="seconds of load before each kill")
    ap.add_argument("--after", type=float, default=30, help="seconds of load after the last")
    ap.add_argument("--reconcile-every", type=float, default=60)
    ap.add_argument("--out", default=str(DOCS / "game-day.json"))
    args = ap.parse_args()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGHUP):  # ended from outside: tear down as on Ctrl-C
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    run_id = secrets.token_hex(3)
    reaper = Reaper(run_id)
    reaper.sweep_orphans()
    atexit.register(reaper.kill_all)  # the last resort, should the finally below be cut short
    workdir = Path(tempfile.mkdtemp(prefix="pixtools-gameday-"))
    node = None
    try:
        env = provision(run_id, reaper, workdir)
        node = Node(reaper, env, free_port(), workdir)
        node.start()
        load, results, started = await run_game_day(node, env, args)
        node.stop()  # nothing writes while the store is counted
        states = await job_states(env["PIXTOOLS_DATABASE_URL"])
        versions = bucket_writes(env["PIXTOOLS_S3_ENDPOINT_URL"], env["PIXTOOLS_S3_BUCKET"])
    finally:
        if node is not None:
            node.stop()
        reaper.kill_all()
        deprovision(run_id)
    summary = summarise(args, load, results, started, states, versions)
    Path(args.out).write_text(json.dumps(summary) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("events", "done")}, indent=1))
    plot(summary, started)
    if summary["jobs_lost"]:
        raise SystemExit(f"FAILED: {summary['jobs_lost']} accepted jobs never succeeded")


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
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        note("interrupted: every process it started is stopped")
        sys.exit(130)

"""Load baseline: a workload mix against a real services stack, client concurrency ramped.

Starts `pixtools api`, a standard worker pool and an ML worker pool as real processes, sized
like the cluster's (standard: 1 process x 5 threads, ml: 1 x 1), on this machine's PostgreSQL
and RabbitMQ with the local-folder store (bench/stack.py). Then, for each step of closed-loop
clients (1, 2, 4, ... 128 by default), every client repeatedly submits a job of the mix and
long-polls it to its end, for ``--step-seconds``; then the step drains (every accepted job must
end). Workloads, in a fixed rotation per client:

* ``phone``: a 12-megapixel JPEG → a 320 px WebP thumbnail, a 1600 px WebP for the web and a
  1200 px AVIF (three outputs);
* ``burst``: a 640x480 JPEG → a 256 px WebP thumbnail (the small-image burst);
* ``ml``: the cat photo → face detection (queue ml).

A 429 is retried after its Retry-After (not a failure if the job then completes); any other
non-202 answer, a job that does not succeed, or a job still unfinished after the drain is a
failure. Per step: throughput, submit and end-to-end p50/p95/p99, the queues' peak depth
(RabbitMQ's Prometheus endpoint, per object) and worker CPU utilisation. Writes
docs/load-baseline.json and the plots docs/load-*.png.

    python bench/load.py [--steps 1,2,4,8,16,32,64,128] [--step-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from pipeline import cpu_seconds, multipart_body, pct, photo_like_jpeg  # bench/pipeline.py
from stack import running_stack  # bench/stack.py

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RABBIT_METRICS = "http://127.0.0.1:15692/metrics/per-object"


def _webp(name: str, width: int, quality: int = 80) -> dict[str, Any]:
    return {
        "name": name,
        "steps": [
            {"op": "resize", "width": width},
            {"op": "convert", "format": "webp", "quality": quality},
        ],
    }


def workloads() -> dict[str, tuple[bytes, str]]:
    """Name → (source bytes, spec JSON)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
    from tests.support import samples

    cat = io.BytesIO()
    samples.cat().convert("RGB").save(cat, "JPEG", quality=90)
    phone = {
        "outputs": [
            _webp("thumb", 320),
            _webp("web", 1600),
            {
                "name": "avif",
                "steps": [
                    {"op": "resize", "width": 1200},
                    {"op": "convert", "format": "avif", "quality": 60},
                ],
            },
        ]
    }
    return {
        "phone": (photo_like_jpeg(4000, 3000), json.dumps(phone)),
        "burst": (photo_like_jpeg(640, 480), json.dumps({"outputs": [_webp("thumb", 256)]})),
        "ml": (
            cat.getvalue(),
            json.dumps({"outputs": [{"name": "faces", "steps": [{"op": "detect_faces"}]}]}),
        ),
    }


ROTATION = ("burst", "phone", "burst", "burst", "ml", "burst", "phone", "burst")


class QueueSampler:
    """Peak ready+unacked messages per work queue of one vhost, sampled every second."""

    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        self.peak: dict[str, int] = {"standard": 0, "ml": 0}
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        pattern = re.compile(
            r'^rabbitmq_queue_messages\{vhost="'
            + re.escape(self.vhost)
            + r'",queue="(standard|ml)"\} (\S+)',
            re.M,
        )
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                try:
                    text = (await client.get(RABBIT_METRICS)).text
                    for queue, value in pattern.findall(text):
                        self.peak[queue] = max(self.peak[queue], int(float(value)))
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(1)

    def start(self) -> None:
        self.peak = {"standard": 0, "ml": 0}
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, int]:
        assert self.task is not None
        self.task.cancel()
        return dict(self.peak)


async def run_step(
    client: aiohttp.ClientSession,
    bodies: dict[str, tuple[bytes, str]],
    clients: int,
    seconds: float,
    drain: float,
) -> dict[str, Any]:
    submit: list[float] = []
    e2e: dict[str, list[float]] = {name: [] for name in bodies}
    failures: list[str] = []
    throttled = 0
    transport_retries = 0
    accepted = 0
    finished = 0
    deadline = time.monotonic() + seconds

    async def call(method: str, url: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        # A pooled keep-alive connection the server closes just as it is reused fails the
        # request before it is sent: retried (the submit carries an Idempotency-Key, so a
        # retried submit can never make a second job) and counted.
        nonlocal transport_retries
        for attempt in range(4):
            try:
                async with client.request(method, url, **kw) as r:
                    return r.status, await r.json(), dict(r.headers)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt == 3:
                    raise
                transport_retries += 1
                await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    async def one(kind: str) -> None:
        nonlocal throttled, accepted, finished
        body, ctype = bodies[kind]
        headers = {"content-type": ctype, "Idempotency-Key": uuid.uuid4().hex}
        started = time.perf_counter()
        while True:
            t = time.perf_counter()
            status, answer, answer_headers = await call(
                "POST", "/api/v1/jobs", data=body, headers=headers
            )
            if status == 429:  # honour the limit, then try again: not a failure
                throttled += 1
                await asyncio.sleep(float(answer_headers.get("Retry-After", "1")))
                continue
            if status not in (200, 202):
                failures.append(f"submit {status}: {str(answer)[:200]}")
                return
            submit.append(time.perf_counter() - t)
            accepted += 1
            break
        job_id = answer["id"]
        end = time.monotonic() + seconds + drain
        while time.monotonic() < end:
            _, job, _ = await call("GET", f"/api/v1/jobs/{job_id}", params={"wait": 20})
            if job["status"] not in ("queued", "running"):
                finished += 1
                if job["status"] != "succeeded":
                    failures.append(f"job {job_id} {job['status']}: {job.get('error')}")
                e2e[kind].append(time.perf_counter() - started)
                return
        failures.append(f"job {job_id} not finished after the drain (lost?)")

    async def loop(index: int) -> None:
        turn = index
        while time.monotonic() < deadline:
            await one(ROTATION[turn % len(ROTATION)])
            turn += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(clients)))
    wall = time.perf_counter() - started
    all_e2e = [v for values in e2e.values() for v in values]
    return {
        "clients": clients,
        "wall_s": round(wall, 1),
        "accepted": accepted,
        "finished": finished,
        "lost": accepted - finished,
        "failed": len(failures),
        "failures": failures[:5],
        "throttled": throttled,
        "transport_retries": transport_retries,
        "jobs_per_s": round(finished / wall, 2),
        "submit_ms": {f"p{q}": round(pct(submit, q) * 1000, 1) for q in (50, 95, 99)},
        "e2e_s": {f"p{q}": round(pct(all_e2e, q), 2) for q in (50, 95, 99)},
        "e2e_by_workload_p95_s": {k: round(pct(v, 95), 2) for k, v in e2e.items() if v},
        "jobs_by_workload": {k: len(v) for k, v in e2e.items()},
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--step-seconds", type=float, default=15)
    ap.add_argument("--drain-seconds", type=float, default=600)
    ap.add_argument("--out", default=str(DOCS / "load-baseline.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the plots from --out")
    args = ap.parse_args()
    if args.plot_only:
        plot(json.loads(Path(args.out).read_text()))
        return
    steps = [int(s) for s in args.steps.split(",")]
    sources = workloads()
    bodies = {k: multipart_body(data, spec) for k, (data, spec) in sources.items()}
    workers = {
        "worker-standard": ["--queues", "standard", "--processes", "1", "--threads", "5"],
        "worker-ml": ["--queues", "ml", "--processes", "1", "--threads", "1"],
    }
    results: list[dict[str, Any]] = []
    with running_stack(workers) as stack:
        vhost = stack.database_url.rsplit("/", 1)[1]
        sampler = QueueSampler(vhost)
        async with aiohttp.ClientSession(
            base_url=stack.base_url,
            timeout=aiohttp.ClientTimeout(total=120),
            connector=aiohttp.TCPConnector(limit=max(steps) * 2 + 8),
        ) as client:
            for clients in steps:
                sampler.start()
                before = cpu_seconds(stack.pids)
                step = await run_step(
                    client, bodies, clients, args.step_seconds, args.drain_seconds
                )
                after = cpu_seconds(stack.pids)
                step["queue_peak"] = await sampler.stop()
                cores = os.cpu_count() or 1
                busy = {
                    name: round((after[name] - before[name]) / step["wall_s"] / cores, 3)
                    for name in ("api", "worker-standard", "worker-ml")
                }
                step["cpu_share_of_machine"] = busy
                step["machine_busy"] = round(
                    (after["machine"] - before["machine"]) / step["wall_s"] / cores, 3
                )
                results.append(step)
                print(json.dumps(step), flush=True)
    out = {
        "cores": os.cpu_count(),
        "step_seconds": args.step_seconds,
        "rotation": ROTATION,
        "workers": workers,
        "steps": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    plot(out)
    bad = [s for s in results if s["failed"] or s["lost"]]
    if bad:
        print(f"FAILED: failures or lost jobs at {[s['clients'] for s in bad]}", file=sys.stderr)
        raise SystemExit(1)


def plot(out: dict[str, Any]) -> None:
    """docs/load-throughput.png and docs/load-latency.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = out["steps"]
    x = [s["clients"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, [s["jobs_per_s"] for s in steps], marker="o", label="jobs/s (finished)")
    ax2 = ax.twinx()
    ax2.plot(
        x,
        [sum(s["cpu_share_of_machine"].values()) * out["cores"] for s in steps],
        marker="s",
        color="tab:red",
        label="PixTools CPU (cores; the machine is shared)",
    )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("jobs/s")
    ax2.set_ylabel("cores used by api + workers")
    ax.set_title("PixTools load baseline: throughput")
    fig.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(DOCS / "load-throughput.png", dpi=90)
    fig, ax = plt.subplots(figsize=(7, 4))
    for q in ("p50", "p95", "p99"):
        ax.plot(x, [s["e2e_s"][q] for s in steps], marker="o", label=f"end-to-end {q}")
    ax.plot(x, [s["submit_ms"]["p95"] / 1000 for s in steps], marker="^", label="submit p95")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("seconds")
    ax.set_title("PixTools load baseline: latency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / "load-latency.png", dpi=90)


if __name__ == "__main__":
    asyncio.run(main())

"""Benchmark of the whole durable pipeline against the same image work in a bare process pool.

Starts `pixtools api` and `pixtools worker --queues standard` as real processes on this
machine's PostgreSQL and RabbitMQ (a database and vhost of its own, removed afterwards) and
the **local-folder object store** — a local S3 emulator would spend the same CPU we are
measuring. Then:

1. idle phase: jobs submitted one at a time, to measure the pipeline's own overhead
   (submit → a worker starts the output) with nothing queued;
2. load phase: N jobs (a 12-megapixel JPEG → 800 px wide WebP q80) from C concurrent clients;
3. baseline: the same N renders in a `ProcessPoolExecutor` of the worker's process count,
   in this same run, once before the pipeline and once after (averaged: the machine's speed
   drifts).

Prints jobs/s, submit latency p50/p95/p99, queue overhead p50/p95, submit-to-done p50/p95,
peak RSS of the api and worker process trees, and the pipeline efficiency (pipeline jobs/s
divided by bare-pool jobs/s).

    python bench/pipeline.py [--jobs 48] [--clients 16] [--processes 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import psutil
from PIL import Image
from stack import RssSampler, output_timings, running_stack  # bench/stack.py

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "outputs": [
        {
            "name": "web",
            "steps": [
                {"op": "resize", "width": 800},
                {"op": "convert", "format": "webp", "quality": 80},
            ],
        }
    ]
}


def photo_like_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """A 12 MP JPEG with photo-like statistics (smooth gradients plus fine noise)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [128 + 90 * np.sin(x / 300), 128 + 90 * np.cos(y / 250), 128 + 60 * np.sin((x + y) / 400)],
        axis=-1,
    )
    noise = rng.normal(0, 12, (height, width, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q))


def render_once(data: bytes) -> int:
    from pixtools.imaging import render_output
    from pixtools.jobspec.job import parse_spec

    steps = parse_spec(json.dumps(SPEC)).outputs[0].steps
    out = render_output(data, steps, max_pixels=50_000_000)
    return len(out.data or b"")


def bare_pool(data: bytes, jobs: int, processes: int) -> float:
    """Jobs/s of the same renders in a bare process pool (warmed up first)."""
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(render_once, [data] * processes))
        started = time.perf_counter()
        list(pool.map(render_once, [data] * jobs))
        return jobs / (time.perf_counter() - started)


def multipart_body(image: bytes, spec: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the ``file`` and ``spec`` parts, and its content type."""
    request = httpx.Request(
        "POST", "http://x/", files={"file": ("photo.jpg", image, "image/jpeg")}, data={"spec": spec}
    )
    return request.read(), request.headers["content-type"]


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of each process tree, this client, and the whole machine."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        root = psutil.Process(pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        out[name] = total
    me = psutil.Process().cpu_times()
    out["client"] = me.user + me.system
    sys_t = psutil.cpu_times()
    machine = (
        sys_t.user
        + sys_t.system
        + getattr(sys_t, "nice", 0)
        + getattr(sys_t, "softirq", 0)
        + getattr(sys_t, "irq", 0)
    )
    out["others"] = machine - sum(out.values())
    out["machine"] = machine
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=48)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--api-workers", type=int, default=1)
    ap.add_argument("--idle-jobs", type=int, default=15)
    ap.add_argument(
        "--source",
        default="4000x3000",
        help="source JPEG size WxH (the target's is 4000x3000; e.g. 64x48 shows the fixed "
        "cost per job, since the render then costs almost nothing)",
    )
    args = ap.parse_args()

    src_w, src_h = (int(v) for v in args.source.lower().split("x"))
    data = photo_like_jpeg(src_w, src_h)
    print(
        f"source: {src_w}x{src_h} JPEG, {len(data) / 1e6:.3f} MB; spec: resize 800 wide "
        "(never enlarging), WebP q80"
    )
    print(f"store: local folder; database: PostgreSQL; broker: RabbitMQ; cores: {os.cpu_count()}")
    worker = [
        "--queues",
        "standard",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
    ]
    # The baseline brackets the pipeline run (before it and after it, averaged): this VM's
    # speed drifts by tens of percent over a minute, and one baseline on one side of the
    # run would book that drift as pipeline (in)efficiency.
    pool_before = bare_pool(data, args.jobs, args.processes)
    with running_stack({"worker": worker}, api_workers=args.api_workers) as stack:
        # aiohttp, not httpx, as the load generator: it shares the two cores it measures,
        # and costs about half the CPU per request (measured: client CPU per job).
        async with aiohttp.ClientSession(
            base_url=stack.base_url,
            timeout=aiohttp.ClientTimeout(total=120),
            connector=aiohttp.TCPConnector(limit=args.clients + 4),
        ) as client:
            sampler = RssSampler(stack.pids)
            sampler.start()
            print("pids: " + ", ".join(f"{n} {pid}" for n, pid in stack.pids.items()), flush=True)

            # The load generator shares the cores it measures: encode the multipart body once
            # (like wrk with a body file) instead of once per request.
            body, content_type = multipart_body(data, json.dumps(SPEC))

            async def submit() -> tuple[str, float]:
                t = time.perf_counter()
                async with client.post(
                    "/api/v1/jobs", data=body, headers={"content-type": content_type}
                ) as r:
                    answer = await r.json()
                    assert r.status == 202, answer
                return answer["id"], time.perf_counter() - t

            async def wait_done(job_id: str) -> dict[str, Any]:
                while True:  # long polling: one request per job, not a polling storm
                    async with client.get(f"/api/v1/jobs/{job_id}", params={"wait": 30}) as r:
                        job: dict[str, Any] = await r.json()
                    if job["status"] not in ("queued", "running"):
                        assert job["status"] == "succeeded", job
                        return job

            # 1. idle: one job at a time.
            idle_ids, idle_submit = [], []
            for _ in range(args.idle_jobs):
                jid, lat = await submit()
                await wait_done(jid)
                idle_ids.append(jid)
                idle_submit.append(lat)

            # 2. load: N jobs from C concurrent clients, each waiting for its job.
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(args.jobs):
                queue.put_nowait(i)
            submit_lat: list[float] = []
            steady_lat: list[float] = []  # each client's submissions after its first
            load_ids: list[str] = []

            async def client_loop() -> None:
                first = True
                while True:
                    try:
                        queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    jid, lat = await submit()
                    submit_lat.append(lat)
                    if not first:
                        steady_lat.append(lat)
                    first = False
                    load_ids.append(jid)
                    await wait_done(jid)

            cpu_before = cpu_seconds(stack.pids)
            started = time.perf_counter()
            await asyncio.gather(*(client_loop() for _ in range(args.clients)))
            wall = time.perf_counter() - started
            cpu_after = cpu_seconds(stack.pids)
            peak = sampler.stop()
        timings = await output_timings(stack.database_url)

    idle = [t for t in timings if t["id"] in set(idle_ids)]
    load = [t for t in timings if t["id"] in set(load_ids)]
    span = max(t["job_finished"] for t in load) - min(t["created"] for t in load)
    jobs_per_s = len(load) / span
    pool_after = bare_pool(data, args.jobs, args.processes)
    pool_rate = (pool_before + pool_after) / 2

    ms = 1000

    def percentiles(
        label: str, seconds: list[float], *qs: int, note: str = "", digits: int = 1
    ) -> None:
        cells = "  ".join(f"p{q} {pct(seconds, q) * ms:6.{digits}f} ms" for q in qs or (50, 95))
        print(f"{label:<21} {cells}" + (f"   {note}" if note else ""))

    print(
        f"\nworker: {args.processes} process(es) x {args.threads} thread(s); api processes: {args.api_workers}; clients: {args.clients}; jobs: {args.jobs}"
    )
    print(
        f"throughput            {jobs_per_s:6.2f} jobs/s   (first accepted -> last finished {span:.1f} s; wall {wall:.1f} s)"
    )
    percentiles("submit latency load", submit_lat, 50, 95, 99)
    percentiles(
        "submit latency steady",
        steady_lat,
        note="(after each client's first: the opening burst of simultaneous uploads left out)",
    )
    percentiles("submit latency idle", idle_submit)
    percentiles(
        "queue overhead idle",
        [t["started"] - t["created"] for t in idle],
        note="(submit committed -> worker starts; nothing queued)",
    )
    confirmed = [t for t in idle if t["published"] is not None]
    relay = [t["published"] - t["created"] for t in confirmed]
    confirm_to_start = [t["started"] - t["published"] for t in confirmed]
    print(
        f"  of which (idle p50)  accepted -> publish confirmed {pct(relay, 50) * ms:5.1f} ms, "
        f"confirmed -> worker starts {pct(confirm_to_start, 50) * ms:5.1f} ms   "
        "(the relay's outbox transaction and the broker's confirm; the worker often starts first)"
    )
    percentiles(
        "queue wait under load",
        [t["started"] - t["created"] for t in load],
        note="(includes waiting behind other jobs)",
    )
    percentiles("submit-to-done load", [t["job_finished"] - t["created"] for t in load], digits=0)
    percentiles("submit-to-done idle", [t["job_finished"] - t["created"] for t in idle], digits=0)
    print(
        f"peak RSS              api {peak['api'] / 2**20:6.0f} MiB   worker (all processes) {peak['worker'] / 2**20:6.0f} MiB"
    )
    print(
        f"bare process pool     {pool_rate:6.2f} jobs/s   ({args.processes} processes, same renders, same run: "
        f"{pool_before:.2f} before the pipeline, {pool_after:.2f} after)"
    )
    print(f"pipeline efficiency   {jobs_per_s / pool_rate * 100:6.1f} %")
    n = len(load)
    where = {k: (cpu_after[k] - cpu_before[k]) / n * ms for k in cpu_after}
    print("CPU per job (load)    " + "  ".join(f"{k} {v:5.1f} ms" for k, v in where.items()))
    print(f"bare render CPU       {args.processes / pool_rate * ms:5.1f} ms per job (pool)")


if __name__ == "__main__":
    asyncio.run(main())

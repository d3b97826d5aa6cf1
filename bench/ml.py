"""Benchmark of the ML ops as the ML worker runs them (the op functions, in process).

For each op and two source sizes it prints latency p50/p95, throughput, the share of time
inside onnxruntime ``session.run`` against our pre/post-processing, and the overhead against
*raw* ``session.run`` on the identical tensors: each iteration re-runs the captured inputs
straight on the session right after the op, so both see the same machine load. Target: the op
adds under 10 % on top of raw inference.

    .venv/bin/python bench/ml.py [--iterations 20] [--sizes 512,3000] [--threads N] [--json F]

Needs the ML extra and scikit-image's data files (scripts/install-ml.sh --dev).
Queueing share needs the running service: see ``service_figures`` (the hook for the
end-to-end benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from PIL import Image

from pixtools.imaging.context import StepContext
from pixtools.jobspec.ops import BlurFaces, DetectFaces, Moderate, Ocr, Step
from pixtools.ml import ops, runtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
from tests.support import samples
from tests.support.inference import Inference, captured_inferences

OpFn = Callable[[Image.Image, Any, StepContext], Image.Image]

DOCUMENT = [
    "PixTools benchmark document",
    "Invoice 2024-117, due 30 June",
    "3 x Widget (blue)      $42.50",
    "1 x Gadget, large     $199.00",
    "Shipping and handling   $7.95",
    "Total                 $334.45",
    "Thank you for your order!",
]


@dataclass
class Figures:
    op: str
    size: str
    iterations: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    ops_per_s: float
    inference_share: float  # time inside session.run / op time
    pre_post_vs_inference: float  # (op time - its session.run time) / its session.run time
    raw_inference_ms: float  # median of session.run alone on the same tensors
    overhead_vs_raw: float  # median over iterations of op time / raw inference time, - 1


def _inputs(long_side: int) -> dict[str, Image.Image]:
    portrait = samples.scaled(samples.astronaut(), long_side)
    return {
        "blur_faces": portrait,
        "detect_faces": portrait,
        "moderate": portrait,
        "ocr": samples.scaled(samples.text_image(DOCUMENT), long_side),
    }


def _raw_run(captured: list[Inference]) -> float:
    """Seconds for plain ``session.run`` on the captured inputs, nothing else around it."""
    raw = 0.0
    for call in captured:
        model = call.model
        feeds = dict(call.feeds)
        start = time.perf_counter()
        model.session.run(model.output_names, feeds)
        raw += time.perf_counter() - start
    return raw


def _measure(
    name: str, fn: OpFn, params: Step, img: Image.Image, iterations: int, warmup: int
) -> Figures:
    op_s: list[float] = []
    inference_s: list[float] = []
    raw_s: list[float] = []
    previous: list[Inference] = []
    for i in range(warmup + iterations):
        # The same image gives the same tensors every time, so raw runs can go before or after
        # the op: alternate, so that neither side always finds the caches warm.
        raw_before = _raw_run(previous) if i % 2 and previous else None
        ctx = StepContext(source_format="png", source_size=img.size)
        with captured_inferences() as captured:
            start = time.perf_counter()
            fn(img, params, ctx)
            elapsed = time.perf_counter() - start
        raw = raw_before if raw_before is not None else _raw_run(captured)
        previous = captured
        if i >= warmup:
            op_s.append(elapsed)
            inference_s.append(sum(c.seconds for c in captured))
            raw_s.append(raw)
    q = statistics.quantiles(op_s, n=20, method="inclusive")
    total, inference = sum(op_s), sum(inference_s)
    return Figures(
        op=name,
        size=f"{img.width}x{img.height}",
        iterations=iterations,
        p50_ms=statistics.median(op_s) * 1000,
        p95_ms=q[18] * 1000,
        mean_ms=total / iterations * 1000,
        ops_per_s=iterations / total,
        inference_share=inference / total,
        pre_post_vs_inference=(total - inference) / inference,
        raw_inference_ms=statistics.median(raw_s) * 1000,
        # Per-iteration ratios, then the median: robust to other load on a shared machine.
        overhead_vs_raw=statistics.median(o / r for o, r in zip(op_s, raw_s, strict=True)) - 1,
    )


def jpeg_source_figures(runs: int = 7) -> list[str]:
    """The worker's whole render of an analysis output from a 12 MP JPEG (decode included),
    with the DCT-scaled decode for analysis ops against a full decode, in the same run."""
    import io

    from pixtools.imaging import pipeline
    from pixtools.imaging.decode import decode

    big = samples.astronaut().resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    lines = []
    for name, step in (("moderate", Moderate()), ("detect_faces", DetectFaces())):
        fn = pipeline.op_function(name)

        def full(step: Step = step, fn: OpFn = fn) -> None:
            decoded = decode(data, max_pixels=50_000_000)
            fn(decoded.image, step, StepContext(source_format="jpeg", source_size=big.size))

        def drafted(step: Step = step) -> None:
            pipeline.render_output(data, [step], max_pixels=50_000_000)

        times: dict[str, list[float]] = {"full": [], "drafted": []}
        for _ in range(runs):
            for label, call in (("full", full), ("drafted", drafted)):
                start = time.perf_counter()
                call()
                times[label].append(time.perf_counter() - start)
        a, b = (statistics.median(times[k]) * 1000 for k in ("full", "drafted"))
        lines.append(
            f"{name:<13} 12 MP JPEG, decode + op: full decode {a:7.1f} ms, "
            f"DCT-scaled decode {b:7.1f} ms ({a / b:.2f}x)"
        )
    return lines


def service_figures(jobs: int = 12) -> dict[str, float] | None:
    """The same ops through the service: api + ML worker as processes (bench/stack.py).

    Each op runs ``jobs`` times on the 512 px astronaut, one job at a time (so the queue
    wait is the pipeline's own, not waiting behind other jobs), then a burst of ``jobs``
    detect_faces jobs measures the worker's throughput. Timestamps come from the database:
    accepted → a worker starts the output (queueing) → the output is stored (processing).
    """
    import asyncio
    import io

    import httpx
    from stack import RssSampler, output_timings, running_stack  # bench/stack.py

    buf = io.BytesIO()
    samples.astronaut().save(buf, "PNG")
    photo = buf.getvalue()
    worker = ["--queues", "ml", "--processes", "1", "--threads", "1"]

    async def run(stack: Any) -> tuple[dict[str, list[str]], list[str], float]:
        by_op: dict[str, list[str]] = {}
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as client:

            async def one(op: str) -> str:
                spec = {"outputs": [{"name": "o", "steps": [{"op": op}]}]}
                r = await client.post(
                    "/api/v1/jobs",
                    files={"file": ("a.png", photo)},
                    data={"spec": json.dumps(spec)},
                )
                r.raise_for_status()
                jid = str(r.json()["id"])
                while (await client.get(f"/api/v1/jobs/{jid}", params={"wait": 60})).json()[
                    "status"
                ] in ("queued", "running"):
                    pass
                return jid

            for op in ("detect_faces", "blur_faces", "ocr", "moderate"):
                await one(op)  # warm
                by_op[op] = [await one(op) for _ in range(jobs)]
            started = time.perf_counter()
            burst = await asyncio.gather(*(one("detect_faces") for _ in range(jobs)))
            return by_op, list(burst), time.perf_counter() - started

    with running_stack({"ml": worker}) as stack:
        sampler = RssSampler(stack.pids)
        sampler.start()
        by_op, burst, burst_s = asyncio.run(run(stack))
        peak = sampler.stop()
        timings = {t["id"]: t for t in asyncio.run(output_timings(stack.database_url))}
    out: dict[str, float] = {}
    shares = []
    for op, ids in by_op.items():
        q = [timings[i]["started"] - timings[i]["created"] for i in ids]
        work = [timings[i]["finished"] - timings[i]["started"] for i in ids]
        total = [timings[i]["job_finished"] - timings[i]["created"] for i in ids]
        out[f"{op}_queue_p50_ms"] = round(statistics.median(q) * 1000, 1)
        out[f"{op}_work_p50_ms"] = round(statistics.median(work) * 1000, 1)
        out[f"{op}_accepted_to_done_p50_ms"] = round(statistics.median(total) * 1000, 1)
        shares.append(statistics.median(q) / statistics.median(total))
    out["queue_share_of_accepted_to_done_median"] = round(statistics.median(shares), 3)
    out["burst_jobs_per_s"] = round(len(burst) / burst_s, 2)
    out["ml_worker_peak_rss_mib"] = round(peak["ml"] / 2**20, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sizes", default="512,3000", help="source long sides, comma-separated")
    parser.add_argument(
        "--threads", type=int, help=f"intra-op threads (else {runtime.THREADS_ENV})"
    )
    parser.add_argument("--ops", default="blur_faces,detect_faces,ocr,moderate")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--service",
        action="store_true",
        help="also run the ops through the service (api + ML worker processes) for queueing",
    )
    args = parser.parse_args(argv)

    runtime.configure(args.threads)
    process = psutil.Process()
    rss_start = process.memory_info().rss
    start = time.perf_counter()
    ops.preload()
    load_s = time.perf_counter() - start
    rss_loaded = process.memory_info().rss

    params: dict[str, tuple[OpFn, Step]] = {
        "blur_faces": (ops.blur_faces, BlurFaces()),
        "detect_faces": (ops.detect_faces, DetectFaces()),
        "ocr": (ops.ocr, Ocr()),
        "moderate": (ops.moderate, Moderate()),
    }
    wanted = args.ops.split(",")
    figures: list[Figures] = []
    for side in (int(s) for s in args.sizes.split(",")):
        inputs = _inputs(side)
        for name in wanted:
            fn, p = params[name]
            figures.append(_measure(name, fn, p, inputs[name], args.iterations, args.warmup))
            print(
                f"  measured {name} at {inputs[name].width}x{inputs[name].height}", file=sys.stderr
            )

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(
        f"onnxruntime {runtime._ort_version()}, intra-op threads {runtime.intra_op_threads()}, "
        f"inter-op 1, CPUs available {runtime.available_cpus()} (of {os.cpu_count()}), "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    print(
        f"models loaded in {load_s:.2f} s; RSS {rss_start / 2**20:.0f} MiB at start, "
        f"{rss_loaded / 2**20:.0f} MiB with all models, peak {peak_rss / 2**20:.0f} MiB"
    )
    header = (
        f"{'op':<13}{'source':>11}{'p50 ms':>9}{'p95 ms':>9}{'ops/s':>8}{'in ORT':>8}"
        f"{'pre/post':>9}{'raw ORT ms':>11}{'vs raw':>9}"
    )
    print(header)
    print("-" * len(header))
    for f in figures:
        print(
            f"{f.op:<13}{f.size:>11}{f.p50_ms:>9.1f}{f.p95_ms:>9.1f}{f.ops_per_s:>8.2f}"
            f"{f.inference_share:>8.0%}{f.pre_post_vs_inference:>+9.1%}"
            f"{f.raw_inference_ms:>11.1f}{f.overhead_vs_raw:>+9.1%}"
        )
    print(
        "in ORT: share of the op's time inside session.run; pre/post: the rest, relative to it;"
        "\nvs raw: op time against plain session.run on the same tensors (median of per-run"
        " ratios). Target: under +10 %."
    )
    weights = [f.mean_ms * f.inference_share for f in figures]
    mix = sum(f.mean_ms for f in figures) / sum(weights) - 1
    print(f"all ops and sizes together, pre/post on top of inference: {mix:+.1%}")
    print("worker path (decode included):")
    for line in jpeg_source_figures():
        print("  " + line)
    queueing = service_figures() if args.service else None
    print(
        "queueing: "
        + (
            json.dumps(queueing)
            if queueing
            else "not measured (run with --service: api + ML worker processes)"
        )
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "threads": runtime.intra_op_threads(),
                    "load_s": load_s,
                    "rss_loaded_bytes": rss_loaded,
                    "peak_rss_bytes": peak_rss,
                    "ops": [asdict(f) for f in figures],
                    "queueing": queueing,
                },
                out,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CPU the API process spends per submission, by source size: what an upload itself costs.

Starts `pixtools api` alone (no worker: jobs stay queued) on this machine's PostgreSQL and
RabbitMQ with the local-folder store, submits the same job N times one after another, and
prints the API process's CPU time (user + system) per submission, for a 12 MP JPEG and for
a 64 px one; the difference is what moving the 4 MB costs.

    python bench/api_upload.py [--jobs 40]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx
import psutil
from pipeline import SPEC, multipart_body, photo_like_jpeg  # bench/pipeline.py
from stack import running_stack  # bench/stack.py


def api_cpu(pid: int) -> tuple[float, float]:
    t = psutil.Process(pid).cpu_times()
    return t.user, t.system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--only", choices=["4000x3000", "64x48"])
    args = ap.parse_args()
    sources = {"4000x3000": photo_like_jpeg(4000, 3000), "64x48": photo_like_jpeg(64, 48)}
    if args.only:
        sources = {args.only: sources[args.only]}
    with running_stack({}) as stack, httpx.Client(base_url=stack.base_url, timeout=60) as client:
        pid = stack.pids["api"]
        print(f"api pid {pid}", flush=True)
        for label, data in sources.items():
            body, ctype = multipart_body(data, json.dumps(SPEC))
            for _ in range(5):  # warm up
                client.post("/api/v1/jobs", content=body, headers={"content-type": ctype})
            u0, s0 = api_cpu(pid)
            t0 = time.perf_counter()
            for _ in range(args.jobs):
                r = client.post("/api/v1/jobs", content=body, headers={"content-type": ctype})
                assert r.status_code == 202, r.text
            wall = (time.perf_counter() - t0) / args.jobs
            u1, s1 = api_cpu(pid)
            n = args.jobs
            print(
                f"{label:>9} ({len(data) / 1e6:5.2f} MB): api CPU per submission "
                f"{(u1 - u0 + s1 - s0) / n * 1000:5.1f} ms (user {(u1 - u0) / n * 1000:5.1f}, "
                f"system {(s1 - s0) / n * 1000:5.1f}); latency {wall * 1000:5.1f} ms"
            )


if __name__ == "__main__":
    main()

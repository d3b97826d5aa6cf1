"""Throughput: thumbor vs PixTools' durable pipeline, same transform, same client concurrency.

The transform: a 1920x1080 JPEG -> 800 px wide WebP q80.

- thumbor (its own virtual environment, ``.venv-thumbor``): on 127.0.0.1, file loader, no
  source or result storage (nothing cached), 2 processes; clients GET
  ``/unsafe/800x0/filters:format(webp):quality(80)/photo.jpg``. Figure: requests/s.
- PixTools: api + worker processes with the local-folder store (an S3 emulator's own CPU
  is not what we measure): ``--start-pixtools`` starts ``pixtools api`` and ``pixtools
  worker --queues standard --processes 2`` on this machine's PostgreSQL and RabbitMQ (a
  database and vhost of their own, removed afterwards), or ``--pixtools-url`` points at a
  running stack. Figure: jobs/s, in two modes (``--mode``, default both):

  - ``upload``: each client submits a job with the image (multipart upload + spec) and
    ``?wait=30`` (answered when the job is finished), downloads the output, submits the next;
  - ``reference``: the source is already in PixTools' store (one job uploaded it first, as
    thumbor's file loader has it on disk); each client submits
    ``{"source": {"job": id}, ...}`` with ``?wait=30`` and downloads the output. Same
    transform, same encoder settings as thumbor's.

Both halves use the same number of concurrent clients and run in the same invocation, in
interleaved rounds (`--rounds`; the median ratio is the figure):

    python bench/thumbor.py [--clients 8] [--requests 200] [--jobs 100]
                            [--start-pixtools | --pixtools-url URL [--api-key KEY]]
                            [--mode both|upload|reference] [--rounds N]

Without either PixTools option only the thumbor half runs. Install thumbor with
``python3.11 -m venv .venv-thumbor && .venv-thumbor/bin/pip install thumbor==7.8.0``. For
pillow-simd on both sides: ``bash scripts/install-pillow-simd.sh .venv``, then put the wheel
it built (``~/.cache/pixtools/wheels/pillow-simd-*/*.whl``) in thumbor's venv with
``.venv-thumbor/bin/pip uninstall -y Pillow && .venv-thumbor/bin/pip install --no-deps WHEEL``
(thumbor pins ``Pillow<13``; it does not check the distribution's name at run time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imaging import photo_jpeg  # bench/imaging.py, not pixtools.imaging
from stack import running_stack  # bench/stack.py

ROOT = Path(__file__).resolve().parents[1]
WIDTH, QUALITY = 800, 80
THUMBOR_PATH = f"/unsafe/{WIDTH}x0/filters:format(webp):quality({QUALITY})/photo.jpg"
SPEC = {
    "outputs": [
        {
            "name": "web",
            "steps": [
                {"op": "resize", "width": WIDTH},
                {"op": "convert", "format": "webp", "quality": QUALITY},
            ],
        }
    ]
}
TERMINAL = {"succeeded", "partial", "failed", "canceled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def thumbor_conf(image_dir: Path) -> str:
    """thumbor's settings: read from disk, cache nothing, no WebP/format guessing."""
    return "\n".join(
        [
            "LOADER = 'thumbor.loaders.file_loader'",
            f"FILE_LOADER_ROOT_PATH = {str(image_dir)!r}",
            "STORAGE = 'thumbor.storages.no_storage'",
            "RESULT_STORAGE = None",
            "ALLOW_UNSAFE_URL = True",
            "AUTO_WEBP = False",
            f"QUALITY = {QUALITY}",
            f"WEBP_QUALITY = {QUALITY}",
            "RESPECT_ORIENTATION = True",
            "ENGINE = 'thumbor.engines.pil'",
            "",
        ]
    )


@contextlib.contextmanager
def running_thumbor(venv: Path, image_dir: Path, processes: int) -> Iterator[str]:
    """Start thumbor on 127.0.0.1 with ``processes`` processes; yield its base URL."""
    executable = venv / "bin" / "thumbor"
    if not executable.exists():
        raise SystemExit(f"no thumbor at {executable}: install it in its own venv (see --help)")
    conf = image_dir / "thumbor.conf"
    conf.write_text(thumbor_conf(image_dir))
    port = free_port()
    log = (image_dir / "thumbor.log").open("wb")
    proc = subprocess.Popen(
        [
            str(executable),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            str(conf),
            "--processes",
            str(processes),
            "-l",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(
                    f"thumbor exited: {(image_dir / 'thumbor.log').read_text()[-2000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit("thumbor did not answer /healthcheck within 60 s")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        log.close()


@contextlib.contextmanager
def running_pixtools(processes: int, threads: int = 1) -> Iterator[str]:
    """PixTools' api and a standard worker of ``processes`` processes of ``threads`` threads
    (bench/stack.py)."""
    worker = ["--queues", "standard", "--processes", str(processes), "--threads", str(threads)]
    with running_stack({"worker": worker}) as stack:
        yield stack.base_url


async def closed_loop(one: Callable[[int], Awaitable[object]], clients: int, total: int) -> float:
    """Run ``total`` operations from ``clients`` concurrent loops; return ops/s."""
    counter = iter(range(total))

    async def client() -> None:
        for i in counter:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return total / (time.perf_counter() - started)


def check_webp(data: bytes, what: str) -> None:
    with Image.open(io.BytesIO(data)) as im:
        if im.format != "WEBP" or im.width != WIDTH:
            raise SystemExit(f"{what} returned {im.format} {im.size}, expected WebP {WIDTH} wide")


async def thumbor_throughput(base_url: str, clients: int, total: int) -> float:
    """requests/s of thumbor doing the transform (after one checked warm-up request each)."""
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        first = await client.get(THUMBOR_PATH)
        first.raise_for_status()
        check_webp(first.content, "thumbor")

        async def one(_: int) -> None:
            response = await client.get(THUMBOR_PATH)
            response.raise_for_status()

        await closed_loop(one, clients, clients)  # warm every process
        return await closed_loop(one, clients, total)


async def pixtools_throughput(
    base_url: str,
    data: bytes,
    clients: int,
    total: int,
    *,
    api_key: str | None = None,
    download: bool = True,
    reference: bool = False,
) -> float:
    """jobs/s of a running PixTools stack: submit (with the upload, or naming a source
    already stored with ``reference``) answered when finished, download."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=120, limits=limits, headers=headers, follow_redirects=True
    ) as client:
        source_job: str | None = None

        async def job(_: int, check: bool = False) -> str:
            wait = {"wait": 30}  # answered when the job is finished: no poll request
            if source_job is not None:
                submitted = await client.post(
                    "/api/v1/jobs", params=wait, json={"source": {"job": source_job}, **SPEC}
                )
            else:
                submitted = await client.post(
                    "/api/v1/jobs",
                    params=wait,
                    files={"file": ("photo.jpg", data, "image/jpeg")},
                    data={"spec": json.dumps(SPEC)},
                )
            if submitted.status_code not in (200, 202):
                raise SystemExit(f"submit failed: {submitted.status_code} {submitted.text[:500]}")
            body: dict[str, Any] = submitted.json()
            job_id = body["id"]
            while body["status"] not in TERMINAL:  # not finished within the wait: long poll
                body = (await client.get(f"/api/v1/jobs/{job_id}", params=wait)).json()
            if body["status"] != "succeeded":
                raise SystemExit(f"job {job_id} ended {body['status']}: {body.get('outputs')}")
            if download:
                output = await client.get(f"/api/v1/jobs/{job_id}/outputs/web")
                output.raise_for_status()
                if check:
                    check_webp(output.content, "PixTools")
            return str(job_id)

        first = await job(0, check=True)
        if reference:  # the source stored once (thumbor's file loader has it on disk)
            source_job = first
            await job(0, check=True)
        await closed_loop(job, clients, clients)  # warm every worker process
        return await closed_loop(job, clients, total)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, both halves")
    parser.add_argument("--requests", type=int, default=200, help="thumbor requests timed")
    parser.add_argument("--jobs", type=int, default=100, help="PixTools jobs timed")
    parser.add_argument("--thumbor-processes", type=int, default=2)
    parser.add_argument("--thumbor-venv", type=Path, default=ROOT / ".venv-thumbor")
    pixtools = parser.add_mutually_exclusive_group()
    pixtools.add_argument("--pixtools-url", help="base URL of a running PixTools stack")
    pixtools.add_argument(
        "--start-pixtools", action="store_true", help="start api + worker processes here"
    )
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument(
        "--worker-threads", type=int, default=1, help="threads per worker process (deployed: 5)"
    )
    parser.add_argument("--api-key", default=os.environ.get("PIXTOOLS_API_KEY"))
    parser.add_argument("--no-download", action="store_true", help="PixTools: skip the GET")
    parser.add_argument(
        "--mode",
        choices=("both", "upload", "reference"),
        default="both",
        help="PixTools: the source uploaded with each job, named by reference, or both",
    )
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of all halves")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data = photo_jpeg(1920, 1080)
    print(
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; source 1920x1080 JPEG {len(data) / 1e6:.2f} MB "
        f"-> {WIDTH} px WebP q{QUALITY}; {args.clients} concurrent clients"
    )
    results: dict[str, Any] = {"clients": args.clients, "rounds": []}
    modes = ("upload", "reference") if args.mode == "both" else (args.mode,)
    goals = {"upload": 0.85, "reference": 1.0}
    with contextlib.ExitStack() as stack:
        image_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pixtools-tb-")))
        (image_dir / "photo.jpg").write_bytes(data)
        base = stack.enter_context(
            running_thumbor(args.thumbor_venv, image_dir, args.thumbor_processes)
        )
        version = subprocess.run(
            [
                str(args.thumbor_venv / "bin" / "python"),
                "-c",
                "import thumbor, PIL; print(thumbor.__version__, PIL.__version__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        results["thumbor"] = {"version": version[0], "pillow": version[1]}
        print(
            f"  thumbor {version[0]} (Pillow {version[1]}), {args.thumbor_processes} processes, "
            "file loader, no storage"
        )
        url = None
        if args.start_pixtools:
            url = stack.enter_context(running_pixtools(args.worker_processes, args.worker_threads))
            print(
                f"  PixTools started here (api 1 process + worker {args.worker_processes} "
                "processes, local-folder store, PostgreSQL, RabbitMQ)"
            )
        elif args.pixtools_url:
            url = args.pixtools_url
            print(f"  PixTools at {url}")
        action = "download" if not args.no_download else "no download"
        # Rounds interleave the halves, so a change in the machine's load (a shared VM)
        # falls on both: each ratio is of figures taken minutes apart at most.
        for n in range(1, args.rounds + 1):
            rps = asyncio.run(thumbor_throughput(base, args.clients, args.requests))
            row: dict[str, float] = {"thumbor_requests_per_s": rps}
            line = f"  round {n}: thumbor {rps:6.2f} req/s"
            for mode in modes if url else ():
                assert url is not None
                jps = asyncio.run(
                    pixtools_throughput(
                        url,
                        data,
                        args.clients,
                        args.jobs,
                        api_key=args.api_key,
                        download=not args.no_download,
                        reference=mode == "reference",
                    )
                )
                row[f"{mode}_jobs_per_s"] = jps
                row[f"ratio_{mode}"] = jps / rps
                line += f"; {mode} {jps:6.2f} jobs/s = {jps / rps:.2f}x"
            results["rounds"].append(row)
            print(line, flush=True)
    if url is None:
        print("  PixTools: skipped (neither --start-pixtools nor --pixtools-url)")
    else:
        print(f"  PixTools: submit?wait=30, {action}; {args.jobs} jobs per mode and round")
        for mode in modes:
            ratios = sorted(r[f"ratio_{mode}"] for r in results["rounds"])
            median = ratios[len(ratios) // 2]
            results[f"ratio_{mode}"] = median
            print(
                f"  ratio PixTools {mode} / thumbor: median {median:.2f}x over "
                f"{len(ratios)} round(s), range {ratios[0]:.2f}-{ratios[-1]:.2f}x "
                f"(goal >= {goals[mode]}x)"
            )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hostile clients against the API process: memory held by stalled uploads, and the cost
of clients vanishing mid-upload.

Starts `pixtools api` alone (no worker) on this machine's PostgreSQL and RabbitMQ, then

1. opens ``--held`` connections that each stream most of a 24 MiB upload and stall, and
   prints the API process's RSS before and after (the upload cap bounds it: only
   ``PIXTOOLS_UPLOAD_CONCURRENCY`` bodies are read at once);
2. opens ``--vanishing`` connections that send half an upload and close, and prints how
   /metrics counted them (499) and how many ERROR lines the API logged (none).

    python bench/api_edges.py [--held 40] [--vanishing 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import time

import httpx
import psutil
from stack import running_stack  # bench/stack.py

BOUNDARY = "benchedge"
MIB = 1024 * 1024


def upload_head(length: int) -> bytes:
    return (
        "POST /api/v1/jobs HTTP/1.1\r\nHost: bench\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
    ).encode()


def held_uploads(host: str, port: int, count: int, seconds: float) -> list[socket.socket]:
    """``count`` uploads of 24 MiB, streamed as fast as the server takes them, never ended."""
    head = upload_head(24 * MIB + 500)
    chunk = b"\xff\xd8\xff" + os.urandom(256 * 1024)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((host, port))
        sock.sendall(head)
        sock.setblocking(False)
        socks.append(sock)
    sent = [0] * count
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i, sock in enumerate(socks):
            if sent[i] < 23 * MIB:
                with contextlib.suppress(BlockingIOError, OSError):  # buffers full
                    sent[i] += sock.send(chunk)
        time.sleep(0.01)
    return socks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--held", type=int, default=40)
    ap.add_argument("--vanishing", type=int, default=2000)
    args = ap.parse_args()
    with running_stack({}) as stack:
        host, port = stack.base_url.removeprefix("http://").split(":")
        api = psutil.Process(stack.pids["api"])
        before = api.memory_info().rss
        socks = held_uploads(host, int(port), args.held, 8.0)
        during = api.memory_info().rss
        for sock in socks:
            sock.close()
        print(
            f"{args.held} stalled 24 MiB uploads: API RSS {before / MIB:.0f} -> "
            f"{during / MIB:.0f} MiB (+{(during - before) / MIB:.0f} MiB)",
            flush=True,
        )
        half = upload_head(100_000) + b"\xff\xd8\xff" + b"x" * 1000
        for _ in range(args.vanishing):
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(half)
        time.sleep(3)
        metrics = httpx.get(stack.base_url + "/metrics", timeout=60).text
        for line in metrics.splitlines():
            if line.startswith("pixtools_http_requests_total{") and 'method="POST"' in line:
                print(line)
        log = (stack.workdir / "api.log").read_text(errors="replace")
        errors = log.count('"level": "ERROR"')
        print(f"ERROR lines in the API log: {errors}")


if __name__ == "__main__":
    main()

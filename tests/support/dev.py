"""``pixtools dev`` as a real process with settings of its own, and hand-made multipart bodies."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.processes import Stack, free_port, spawn_dev

BOUNDARY = "edgeboundary"


def start_dev(tmp: Path, **settings: str) -> Stack:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    env["PIXTOOLS_DATA_DIR"] = str(tmp)
    env.update({f"PIXTOOLS_{k.upper()}": v for k, v in settings.items()})
    port = free_port()
    stack = Stack(f"http://127.0.0.1:{port}", {}, tmp)
    log = open(tmp / "api.log", "wb")  # noqa: SIM115 - closed when the process ends
    stack.procs["api"] = spawn_dev(port, env, log, tmp)
    stack.wait_ready(90)
    return stack


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart body from (name, filename or None, content) parts."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()

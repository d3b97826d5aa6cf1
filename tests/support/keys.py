"""API keys made through the CLI, as an operator would."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support.processes import ROOT, Stack


def make_key(stack: Stack, name: str, *, admin: bool = False) -> str:
    args = [sys.executable, "-m", "pixtools.cli", "keys", "create", name] + (
        ["--admin"] if admin else []
    )
    proc = subprocess.run(
        args,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    match = re.search(r"secret \(shown once, store it now\): (\S+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1)

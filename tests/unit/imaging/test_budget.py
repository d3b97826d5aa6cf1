"""The render memory budget (#14.6: ten outputs of a tiny input held 7.3 GB at once).

The pixel limit bounds one render; ``MemoryBudget`` bounds how many run at once in a
worker process, by an estimate made from the header before any pixel is decoded. Here:
the budget's turn-taking with real threads, and the estimate against the memory a real
render takes (measured in a fresh process, per output format).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pixtools.imaging.budget import MemoryBudget, shared_budget
from pixtools.imaging.decode import avif_codec
from pixtools.imaging.pipeline import (
    ENCODER_BYTES_PER_PIXEL,
    WORK_BYTES_PER_PIXEL,
    render_bytes,
    source_render_bytes,
)
from pixtools.jobspec.ops import Convert, Resize
from tests.support.images import MAX_PIXELS, encode, photo

ROOT = Path(__file__).resolve().parents[3]
WAIT = 30  # seconds a thread may take to get going on a loaded machine; never reached


def _holder(
    budget: MemoryBudget, nbytes: int, entered: threading.Event, leave: threading.Event
) -> threading.Thread:
    def run() -> None:
        with budget.reserve(nbytes):
            entered.set()
            assert leave.wait(WAIT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_reservation_waits_while_the_running_ones_hold_too_much() -> None:
    budget = MemoryBudget(100)
    first_in, first_out = threading.Event(), threading.Event()
    second_in, second_out = threading.Event(), threading.Event()
    first = _holder(budget, 70, first_in, first_out)
    assert first_in.wait(WAIT) and budget.free == 30
    second = _holder(budget, 40, second_in, second_out)
    while budget.waiting == 0:  # the second has asked and is waiting (not timed: it must)
        threading.Event().wait(0.01)
    assert not second_in.is_set() and budget.free == 30
    first_out.set()
    first.join(WAIT)
    assert second_in.wait(WAIT) and budget.free == 60
    second_out.set()
    second.join(WAIT)
    assert budget.free == 100 and budget.waiting == 0


def test_turns_are_taken_in_arrival_order() -> None:
    """A large render waiting is not overtaken by smaller ones that would fit now."""
    budget = MemoryBudget(100)
    entered: list[str] = []  # appended under the reservation, in the order granted
    events = {name: (threading.Event(), threading.Event()) for name in ("a", "big", "small")}

    def hold(name: str, nbytes: int) -> threading.Thread:
        def run() -> None:
            with budget.reserve(nbytes):
                entered.append(name)
                events[name][0].set()
                assert events[name][1].wait(WAIT)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    threads = [hold("a", 60)]
    assert events["a"][0].wait(WAIT)
    threads.append(hold("big", 90))
    while budget.waiting < 1:
        threading.Event().wait(0.01)
    threads.append(hold("small", 10))  # fits beside "a", but "big" came first
    while budget.waiting < 2:
        threading.Event().wait(0.01)
    assert entered == ["a"]
    events["a"][1].set()
    assert events["big"][0].wait(WAIT) and events["small"][0].wait(WAIT)  # 90 + 10 fit
    assert entered == ["a", "big", "small"]
    for name in ("big", "small"):
        events[name][1].set()
    for thread in threads:
        thread.join(WAIT)
    assert budget.free == 100 and budget.waiting == 0


def test_a_render_larger_than_the_budget_runs_alone_and_an_error_releases() -> None:
    budget = MemoryBudget(100)
    with budget.reserve(10**9) as held:
        assert held == 100 and budget.free == 0
    with pytest.raises(RuntimeError), budget.reserve(50):
        raise RuntimeError("a failed render")
    assert budget.free == 100
    assert shared_budget(12345) is shared_budget(12345)


def test_the_estimate_comes_from_the_header_and_counts_the_largest_image() -> None:
    src = encode(photo((300, 200)), "JPEG")
    steps = [Resize(width=3000, height=3000, fit="fill", upscale=True), Convert(format="avif")]
    assert source_render_bytes(src, steps, MAX_PIXELS) == render_bytes(steps, "jpeg", (300, 200))
    big = render_bytes(steps, "jpeg", (300, 200))
    assert big >= 3000 * 3000 * 26  # the AVIF encoder's share with the working copies
    shrink = render_bytes([Resize(width=30)], "jpeg", (300, 200))
    assert shrink == 300 * 200 * (4 + WORK_BYTES_PER_PIXEL + ENCODER_BYTES_PER_PIXEL["jpeg"])
    # Before orientation is read, a chain that depends on it is counted both ways.
    wide = [Resize(width=600, upscale=True)]
    assert render_bytes(wide, "png", (300, 200)) >= 600 * 900 * WORK_BYTES_PER_PIXEL


MEASURE = r"""
import io, json, sys
from PIL import Image
from pixtools.imaging.pipeline import render_bytes, render_output
from pixtools.jobspec.ops import Convert, Resize, Rotate

def kib(field):  # this process's own memory (getrusage's peak survives exec from the parent)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

fmt = sys.argv[1]
src = io.BytesIO(); Image.new("RGB", (1, 1)).save(src, "PNG"); src = src.getvalue()
render_output(src, [Convert(format=fmt)], max_pixels=50_000_000)  # codec set up first
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
before = kib("VmRSS")
steps = [Resize(width=3000, height=3000, fit="fill", upscale=True), Rotate(degrees=1),
         Convert(format=fmt)]
render_output(src, steps, max_pixels=50_000_000)
grown = kib("VmHWM") - before
print(json.dumps({"grown": grown, "estimate": render_bytes(steps, "png", (1, 1))}))
"""


@pytest.mark.parametrize(
    "fmt", ["png", "jpeg", "webp", "gif", "tiff", *(["avif"] if avif_codec() else [])]
)
def test_the_estimate_covers_what_a_render_takes(fmt: str) -> None:
    """Peak RSS growth (VmHWM) of a fresh process rendering a 1x1 PNG to ~9 MP (resize +
    rotate), against ``render_bytes`` for the same chain."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, fmt],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
    )
    found = json.loads(proc.stdout)
    assert 0 < found["grown"] <= found["estimate"], (found, proc.stderr)

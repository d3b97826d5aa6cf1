"""Where the ML ops spend their time: onnxruntime ``session.run`` versus our own pre- and
post-processing.

``STATS`` is process-wide and cheap to update (a lock taken once per op and once per
inference). The benchmark reads it; the worker's metrics can read ``STATS.snapshot()`` too.
``capture()`` records the exact tensors each inference received, so a benchmark can time raw
``session.run`` on identical inputs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Timing:
    """Accumulated wall time of one op (or one model): all of it, and the inference part."""

    calls: int = 0
    total_s: float = 0.0
    inference_s: float = 0.0

    @property
    def overhead_s(self) -> float:
        """Time outside ``session.run``: decoding tensors, resizing, post-processing."""
        return self.total_s - self.inference_s


@dataclass(slots=True)
class Inference:
    """One ``session.run`` call as captured: the model key, its input feeds, its duration."""

    model: str
    feeds: Mapping[str, Any]
    seconds: float


@dataclass(slots=True)
class _Frame:
    inference_s: float = 0.0


class _Local(threading.local):
    def __init__(self) -> None:
        self.frames: list[_Frame] = []
        self.captured: list[Inference] | None = None


class MLStats:
    """Per-op and per-model timings of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[str, Timing] = {}
        self._models: dict[str, Timing] = {}
        self._local = _Local()

    @contextmanager
    def op(self, name: str) -> Iterator[None]:
        """Time one op call; inferences run inside it are attributed to it."""
        frame = _Frame()
        self._local.frames.append(frame)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self._local.frames.pop()
            with self._lock:
                t = self._ops.setdefault(name, Timing())
                t.calls += 1
                t.total_s += elapsed
                t.inference_s += frame.inference_s

    def add_inference(self, model: str, seconds: float, feeds: Mapping[str, Any]) -> None:
        """Record one ``session.run`` (called by ``pixtools.ml.runtime.Model.run``)."""
        for frame in self._local.frames:
            frame.inference_s += seconds
        if self._local.captured is not None:
            self._local.captured.append(Inference(model, dict(feeds), seconds))
        with self._lock:
            t = self._models.setdefault(model, Timing())
            t.calls += 1
            t.total_s += seconds
            t.inference_s += seconds

    @contextmanager
    def capture(self) -> Iterator[list[Inference]]:
        """Collect the feeds of every inference this thread runs inside the block."""
        previous = self._local.captured
        captured: list[Inference] = []
        self._local.captured = captured
        try:
            yield captured
        finally:
            self._local.captured = previous

    def snapshot(self) -> dict[str, dict[str, Timing]]:
        """Copies of the counters: ``{"ops": {...}, "models": {...}}``."""
        with self._lock:
            return {
                "ops": {k: Timing(v.calls, v.total_s, v.inference_s) for k, v in self._ops.items()},
                "models": {
                    k: Timing(v.calls, v.total_s, v.inference_s) for k, v in self._models.items()
                },
            }

    def reset(self) -> None:
        """Forget every count and time."""
        with self._lock:
            self._ops.clear()
            self._models.clear()


STATS = MLStats()

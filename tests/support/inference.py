"""Every ``Model.run`` inside a block, captured: which model, its exact feeds, how long.

The ML benchmark re-runs the captured tensors on the bare session, to compare an op with
raw inference on identical inputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pixtools.ml import runtime


@dataclass(slots=True)
class Inference:
    """One ``Model.run``: the model, its input feeds, its duration."""

    model: runtime.Model
    feeds: Mapping[str, Any]
    seconds: float


@contextmanager
def captured_inferences() -> Iterator[list[Inference]]:
    """The inferences run inside the block (in any thread), in order."""
    captured: list[Inference] = []
    run = runtime.Model.run

    def timed(model: runtime.Model, feeds: Mapping[str, Any]) -> Any:
        start = time.perf_counter()
        outputs = run(model, feeds)
        captured.append(Inference(model, dict(feeds), time.perf_counter() - start))
        return outputs

    runtime.Model.run = timed  # type: ignore[method-assign,assignment]
    try:
        yield captured
    finally:
        runtime.Model.run = run  # type: ignore[method-assign]

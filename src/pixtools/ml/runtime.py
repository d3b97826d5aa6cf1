"""onnxruntime sessions: one per model per process, created lazily on first use.

Models are read from the files that installed packages ship (``importlib.resources``), checked
against a pinned SHA-256 (pre- and post-processing here are written for exactly those weights),
and run on the CPU execution provider, named explicitly: onnxruntime otherwise picks whatever
provider the installed build prefers.

Threads: ``intra_op_num_threads`` comes from ``PIXTOOLS_ML_THREADS`` (or ``configure()``),
defaulting to the CPUs this process may use (affinity and cgroup quota); ``inter_op`` is 1
because these graphs are sequential. The ML worker runs one message at a time, so one session
gets all the cores; with more worker threads, set ``PIXTOOLS_ML_THREADS`` to cores / threads.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pixtools.ml.onnx_graph import Dim, prepare_model

THREADS_ENV = "PIXTOOLS_ML_THREADS"
PROVIDERS = ("CPUExecutionProvider",)


class MLUnavailableError(RuntimeError):
    """The ML extra or a model package is missing, or a model file is not the pinned one."""


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A model shipped inside an installed package."""

    key: str
    package: str  # import name of the package that ships the file
    resource: str  # path inside that package
    sha256: str
    distribution: str  # pip name, for error messages
    # Graph inputs/outputs to re-declare (str dims are dynamic); see pixtools.ml.onnx_graph.
    shapes: Mapping[str, Sequence[Dim]] = field(default_factory=dict)

    def path(self) -> Path:
        """The model file on disk; ``MLUnavailableError`` when its package is missing."""
        try:
            ref = resources.files(self.package).joinpath(self.resource)
        except ModuleNotFoundError as exc:
            raise MLUnavailableError(
                f"model package {self.distribution!r} is not installed (see scripts/install-ml.sh)"
            ) from exc
        with resources.as_file(ref) as path:
            if not path.is_file():
                raise MLUnavailableError(f"{self.distribution} ships no {self.resource}")
            return path


class Model:
    """A loaded onnxruntime session with a typed ``run``."""

    def __init__(self, spec: ModelFile, session: Any) -> None:
        self.spec = spec
        self.session = session
        self.input_names: list[str] = [i.name for i in session.get_inputs()]
        self.output_names: list[str] = [o.name for o in session.get_outputs()]
        self.metadata: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map)

    def run(self, feeds: Mapping[str, npt.NDArray[Any]]) -> list[npt.NDArray[np.float32]]:
        """Run the graph."""
        outputs = self.session.run(self.output_names, dict(feeds))
        return [np.asarray(o) for o in outputs]


_lock = threading.Lock()
_models: dict[str, Model] = {}
_threads_override: int | None = None


def configure(threads: int | None) -> None:
    """Set the intra-op thread count before the first model loads (``None``: automatic)."""
    global _threads_override
    if threads is not None and threads < 1:
        raise ValueError("threads must be at least 1")
    with _lock:
        if _models and threads != _threads_override:
            raise RuntimeError("configure() must be called before the first model loads")
        _threads_override = threads


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = cpus or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def intra_op_threads() -> int:
    """The intra-op thread count sessions are created with."""
    if _threads_override is not None:
        return _threads_override
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return available_cpus()
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    return value


def read_verified(spec: ModelFile) -> bytes:
    """The model file's bytes, after checking them against the pinned SHA-256."""
    data = spec.path().read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise MLUnavailableError(
            f"{spec.distribution}/{spec.resource} has SHA-256 {digest}, expected {spec.sha256}: "
            "install the pinned version (scripts/install-ml.sh)"
        )
    return data


def _create_session(spec: ModelFile) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MLUnavailableError(
            "ML ops need the ml extra (onnxruntime): see scripts/install-ml.sh"
        ) from exc

    data = read_verified(spec)
    if spec.shapes:
        data = prepare_model(data, spec.shapes)

    _share_arena(ort)
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the shipped graphs trigger harmless warnings
    # Don't let idle pool threads spin between inferences: the same cores resize images.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Memory: every input size is a new shape, so pre-planned memory patterns only pile up;
    # and one arena for all sessions holds the largest model's peak instead of the sum of
    # every model's. Together: 0.5 GB resident instead of 1.6 GB for CenterFace and the OCR
    # detector at 1500 px, for the same CPU time.
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(data, sess_options=options, providers=list(PROVIDERS))


_arena_shared = False


def _share_arena(ort: Any) -> None:
    """Register one CPU arena for every session of this process (once; under ``_lock``)."""
    global _arena_shared
    if _arena_shared:
        return
    memory = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    # Grow by what is asked, not to the next power of two.
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg({"arena_extend_strategy": 1}))
    _arena_shared = True


def load(spec: ModelFile) -> Model:
    """The process's session for ``spec``, created on first use."""
    model = _models.get(spec.key)
    if model is not None:
        return model
    with _lock:
        model = _models.get(spec.key)
        if model is None:
            model = Model(spec, _create_session(spec))
            _models[spec.key] = model
        return model


def _ort_version() -> str:
    import onnxruntime as ort

    return str(ort.__version__)


def loaded() -> list[str]:
    """Keys of the models this process has loaded."""
    return sorted(_models)

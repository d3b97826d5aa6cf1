"""Sessions: created once per process, CPU provider, deliberate thread counts, pinned files."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from tests.support.inference import captured_inferences

from pixtools.ml import faces, runtime

pytestmark = pytest.mark.ml


def test_a_model_loads_once_per_process() -> None:
    first = runtime.load(faces.CENTERFACE)
    assert runtime.load(faces.CENTERFACE) is first
    assert "centerface" in runtime.loaded()


def test_sessions_run_on_the_cpu_provider_only() -> None:
    session = runtime.load(faces.CENTERFACE).session
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_session_options_are_set_on_purpose() -> None:
    options = runtime.load(faces.CENTERFACE).session.get_session_options()
    assert options.intra_op_num_threads == runtime.intra_op_threads()
    assert options.inter_op_num_threads == 1
    assert not options.enable_mem_pattern  # every image size is a new shape
    assert options.get_session_config_entry("session.use_env_allocators") == "1"
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_thread_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.THREADS_ENV, "3")
    assert runtime.intra_op_threads() == 3
    monkeypatch.delenv(runtime.THREADS_ENV)
    assert runtime.intra_op_threads() == runtime.available_cpus() >= 1
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv(runtime.THREADS_ENV, bad)
        with pytest.raises(ValueError, match=runtime.THREADS_ENV):
            runtime.intra_op_threads()


def test_a_model_file_that_is_not_the_pinned_one_is_refused() -> None:
    wrong = dataclasses.replace(faces.CENTERFACE, key="centerface-wrong-hash", sha256="0" * 64)
    with pytest.raises(runtime.MLUnavailableError, match="SHA-256"):
        runtime.load(wrong)


def test_a_missing_model_package_says_how_to_install_it() -> None:
    missing = dataclasses.replace(
        faces.CENTERFACE, key="nowhere", package="no_such_package_xyz", distribution="nowhere"
    )
    with pytest.raises(runtime.MLUnavailableError, match="install-ml"):
        runtime.load(missing)


def test_importing_the_ops_does_not_import_onnxruntime() -> None:
    code = (
        "import sys, pixtools.jobspec.ops, pixtools.ml.ops;"
        "assert 'onnxruntime' not in sys.modules, 'onnxruntime imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inferences_are_captured_with_their_feeds() -> None:
    model = runtime.load(faces.CENTERFACE)
    blob = np.zeros((1, 3, 64, 64), dtype=np.float32)
    with captured_inferences() as captured:
        model.run({"input.1": blob})
    assert captured[0].seconds > 0
    assert [c.model.spec.key for c in captured] == ["centerface"]
    assert captured[0].feeds["input.1"] is blob

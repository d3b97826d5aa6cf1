"""The wire-format model edit: dynamic shapes and weights out of the graph inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pixtools.ml import onnx_graph
from pixtools.ml.faces import CENTERFACE

pytestmark = pytest.mark.ml


def test_varints_round_trip() -> None:
    for value in (0, 1, 127, 128, 300, 2**31, 2**63 - 1):
        encoded = onnx_graph._varint(value)
        assert onnx_graph._read_varint(encoded, 0) == (value, len(encoded))
    assert len(onnx_graph._varint(-1)) == 10


def test_rejects_bytes_that_are_not_a_model() -> None:
    with pytest.raises(onnx_graph.OnnxFormatError):
        onnx_graph.prepare_model(b"\x0f\x00", {})
    with pytest.raises(onnx_graph.OnnxFormatError):
        onnx_graph.prepare_model(b"\x08\x07", {})  # ir_version only, no graph


def test_centerface_becomes_dynamic_with_constant_weights() -> None:
    import onnxruntime as ort

    raw = CENTERFACE.path().read_bytes()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    before = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    assert before.get_inputs()[0].shape == [10, 3, 32, 32]
    assert _graph_inputs(raw) > 100  # weights listed as graph inputs

    prepared = onnx_graph.prepare_model(raw, CENTERFACE.shapes)
    assert _graph_inputs(prepared) == 1
    session = ort.InferenceSession(prepared, options, providers=["CPUExecutionProvider"])
    (only,) = session.get_inputs()
    assert only.name == "input.1"
    assert only.shape == ["batch", 3, "height", "width"]
    heatmap, *_ = session.run(None, {"input.1": np.zeros((1, 3, 96, 160), dtype=np.float32)})
    assert heatmap.shape == (1, 1, 24, 40)


def _graph_inputs(model: bytes) -> int:
    (graph,) = [v for n, _, v, _ in onnx_graph._fields(model) if n == onnx_graph._MODEL_GRAPH]
    assert isinstance(graph, bytes)
    return sum(1 for n, *_ in onnx_graph._fields(graph) if n == onnx_graph._GRAPH_INPUT)

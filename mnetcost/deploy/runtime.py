"""ONNX Runtime sessions on the CPU: one way to open a model and run a batch.

Sessions run with ``intra_op_num_threads`` set explicitly (the thread count is part of every
timing), sequential execution, and ONNX Runtime's full graph optimizations (its default), on the
``CPUExecutionProvider``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mnetcost.errors import MnetcostError


def load_onnx(path: Path | str, option: str = "--onnx"):
    """An ``onnx.ModelProto`` from a file; one-line errors for a missing or unreadable file."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise MnetcostError(f"{option} {path}: no such file")
    if path.is_dir():
        raise MnetcostError(f"{option} {path}: is a folder, not an .onnx file")
    try:
        proto = onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise MnetcostError(f"{option} {path}: not an ONNX model ({type(exc).__name__})") from None
    if not proto.graph.node:
        raise MnetcostError(f"{option} {path}: not an ONNX model (no graph)")
    return proto


def session(model, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` for a ``ModelProto``, serialized bytes or a path."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = str(model)
    try:
        return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise MnetcostError(f"ONNX Runtime cannot load the model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]})") from None


def input_shape(sess) -> tuple:
    """The model input's shape, symbolic dimensions as strings."""
    return tuple(sess.get_inputs()[0].shape)


def run(sess, x: np.ndarray) -> np.ndarray:
    """The first output of the model for the float32 batch ``x``."""
    return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def versions() -> dict:
    import onnx
    import onnxruntime as ort

    return {"onnx": onnx.__version__, "onnxruntime": ort.__version__}

"""Importers: a model file someone else made -> the calculator's resolved
:class:`~mnetcost.calculator.resolver.Network`, the one form every cost, memory and TensorFlow Lite
Micro figure reads. The modules here never import torch or TensorFlow (the PyTorch importer lives on
the torch side, :mod:`mnetcost.nn.importer`).

* :mod:`mnetcost.calculator.importers.tflite`: a ``.tflite`` file (float32 or int8), read with the
  ``flatbuffers`` package and the TensorFlow Lite schema; its own TFLite graph too, so TFLM's arena is
  planned over the file's own tensors in the file's own operator order.
* :mod:`mnetcost.calculator.importers.onnx`: an ONNX file (the ``onnx`` package, with shape inference).
* :mod:`mnetcost.calculator.importers.nchw`: the one rule per operator kind the ONNX and PyTorch importers
  share.
"""
from __future__ import annotations

MODEL_SUFFIXES = (".tflite", ".onnx")


def is_model_file(name) -> bool:
    """Whether ``name`` (a --variant value) names a model file rather than a spec."""
    return str(name).lower().endswith(MODEL_SUFFIXES)

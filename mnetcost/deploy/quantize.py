"""Static int8 post-training quantization with ONNX Runtime's tools.

``onnxruntime.quantization.quantize_static`` in QDQ format (QuantizeLinear/DequantizeLinear pairs
around each quantized operator, which ONNX Runtime fuses into integer kernels), with

* weights: int8, symmetric, **one scale per output channel** (``per_channel=True``) for every
  Conv and the Gemm classifier;
* activations: int8, one scale per tensor, from the min/max of the calibration batches
  (``CalibrationMethod.MinMax``);
* biases: int32 with scale = input scale x weight scale (ONNX Runtime's rule).

Calibration reads ``calibration_images`` images (:data:`DEFAULT_CALIBRATION_IMAGES`), already
normalised as the model expects, in batches. ONNX Runtime's optional pre-processing
(``quant_pre_process``) is not used: the exported graph already has BatchNorm folded and no
reshapes to simplify.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from mnetcost.deploy.export import INPUT_NAME, ExportError, metadata_of, tidy

DEFAULT_CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 64


class _Batches:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a float32 array."""

    def __init__(self, images: np.ndarray, batch: int, input_name: str):
        self.images, self.batch, self.input_name, self.position = images, batch, input_name, 0

    def get_next(self):
        if self.position >= len(self.images):
            return None
        chunk = self.images[self.position:self.position + self.batch]
        self.position += self.batch
        return {self.input_name: np.ascontiguousarray(chunk, dtype=np.float32)}

    def rewind(self):
        self.position = 0


def quantize_int8(proto, calibration: np.ndarray, *, batch: int = CALIBRATION_BATCH, metadata: dict | None = None):
    """The int8 (QDQ, per-channel weights) ``ModelProto`` of the fp32 ``proto``, calibrated on
    ``calibration`` (N, C, H, W float32, normalised)."""
    import logging

    if len(calibration) == 0:
        raise ValueError("int8 calibration needs at least one image")
    kept = {**metadata_of(proto), **(metadata or {})}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static logs its pre-processing advice on the root logger
    try:
        quantized = _quantize(proto, calibration, batch)
    finally:
        root.setLevel(level)
    from onnx import numpy_helper

    for init in quantized.graph.initializer:  # a scale from an infinite or empty range is NaN or 0
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f" and (not np.all(np.isfinite(values)) or (init.name.endswith("_scale")
                                                                             and np.any(values == 0))):
            raise ExportError(f"int8 quantization produced an unusable scale for {init.name} (its calibration "
                              "range is empty or infinite)")
    return tidy(quantized, {**kept, "dtype": "int8", "calibration_images": int(len(calibration))})


def _quantize(proto, calibration: np.ndarray, batch: int):
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(_Batches, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="mnetcost-int8-") as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(proto.SerializeToString())
        quantize_static(
            str(source), str(target), Reader(calibration, batch, proto.graph.input[0].name or INPUT_NAME),
            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=False,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        return onnx.load(str(target), load_external_data=True)

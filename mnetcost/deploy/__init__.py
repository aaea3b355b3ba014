"""Deployment: ONNX export, ONNX Runtime inference and latency, int8 quantization. Imports torch,
onnx and onnxruntime (the ``mnetcost[deploy]`` extra).

* :mod:`~mnetcost.deploy.export`: a model to ONNX with evaluation semantics (BatchNorm folded, no
  dropout, FMP's fixed draw as Gather/Max), the check against PyTorch, what a file stores.
* :mod:`~mnetcost.deploy.runtime`: ONNX Runtime CPU sessions.
* :mod:`~mnetcost.deploy.quantize`: static int8 post-training quantization (QDQ, per-channel).
* :mod:`~mnetcost.deploy.evaluate`: a trained run's model, data, preprocessing and accuracy.
* :mod:`~mnetcost.deploy.pipeline`: ``mnetcost export`` as a library call.
* :mod:`~mnetcost.deploy.latency`: ``mnetcost bench --runtime`` (ONNX Runtime subjects).
"""

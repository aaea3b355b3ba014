"""Deployment: ONNX export, ONNX Runtime inference and latency, int8 quantization. Imports torch,
onnx and onnxruntime (the ``mnetcost[deploy]`` extra)."""

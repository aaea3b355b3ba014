"""Models and training (PyTorch): models built from resolved layers, fractional max pooling, the
fvcore cross-check, datasets, the training loop, DDP and eager latency. Imports torch; never onnx."""

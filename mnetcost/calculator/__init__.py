"""The calculator: specs, resolution into concrete layers, costs (params, Mult-Adds, memory), the
paper's printed results and reports. Standard library and numpy only: never torch, fvcore, onnx,
matplotlib or pandas (tests/test_layout.py guards this)."""

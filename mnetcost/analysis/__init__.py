"""Analysis of the calculator's output: vectorised sweeps, Pareto fronts, figures. Reads the
calculator; may use numpy, pandas and (inside the plotting functions) matplotlib; never torch or onnx."""

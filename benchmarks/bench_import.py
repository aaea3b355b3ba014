"""Speed of reading and pricing a user's own model file (target: a 1 MB .tflite read and priced in under 1 s
on an idle 2-core machine).

1. In one process: ``importers.tflite.read`` (the FlatBuffers file into the resolved network and its TFLite
   graph), ``network_cost`` with the memory figures, and TFLM's arena for the file
   (``tflm.file_figures``): median of ``--repeats`` runs, and the first (cold) run.
2. The whole command, as a user runs it: ``mnetcost table --variant FILE --runtime tflm --format json``
   (interpreter start-up included), median wall time.

The file: ``--file PATH``, or (default) a Keras MobileNet (alpha 0.5, 96 x 96, 10 classes) converted by the
TensorFlow Lite converter to full-integer int8, about 1 MB, made once in a temporary folder (needs the [tflite]
extra; the conversion is not timed).

Run: python benchmarks/bench_import.py [--file model.tflite] [--repeats 7] > benchmarks/results/bench_import.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def make_file(folder: str) -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.5, weights=None, classes=10,
                                           classifier_activation=None)  # an untrained softmax: docs/models.md
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)]
                                                for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = os.path.join(folder, "mobilenet_a050_96_int8.tflite")
    from mnetcost.deploy.tflite import silenced

    with silenced(), open(path, "wb") as handle:  # the converter prints to stdout and stderr
        handle.write(converter.convert())
    return path


def price(path: str) -> dict:
    from mnetcost.calculator import tflm
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.importers import tflite as IT

    found = IT.read(path)
    found.require_priced()
    cost = network_cost(found.network, "deploy", found.dtype)
    figures = tflm.file_figures(found.graph, found.size, found.parts)
    return {"mult_adds": cost.mult_adds, "params": cost.params, "peak": cost.memory.peak_activation_bytes,
            "arena_bytes": figures["arena_bytes"], "flash_bytes": figures["flash_bytes"],
            "operators": len(found.operators)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", help="a .tflite file (default: a Keras MobileNet converted to int8, ~1 MB)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnetcost-bench-") as folder:
        path = args.file or make_file(folder)
        size = os.path.getsize(path)
        start = time.perf_counter()
        result = price(path)
        cold = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            price(path)
            times.append(time.perf_counter() - start)
        command = [sys.executable, "-m", "mnetcost", "table", "--variant", path, "--runtime", "tflm", "--format",
                   "json"]
        walls = []
        for _ in range(max(3, args.repeats // 2)):
            start = time.perf_counter()
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
        assert json.loads(done.stdout)["arena_bytes"] == result["arena_bytes"]
    print(json.dumps({"file": os.path.basename(path), "file_bytes": size, **result,
                      "read_and_price_s": {"median": round(statistics.median(times), 4), "cold": round(cold, 4)},
                      "cli_wall_s": {"median": round(statistics.median(walls), 4)},
                      "load_average": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()

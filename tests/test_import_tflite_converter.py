"""Files the TensorFlow Lite converter made from Keras models (float32, int8 with int8 input and output, int8
with float input and output), priced as a user's own model: a residual add, a padded depthwise conv,
pools, a concatenation, a squeeze-excite-like gate multiply, standalone activations, a subtraction, a mean,
a classifier; and Keras applications (MobileNet float and int8, MobileNetV2 int8 with its residual adds). The arena is measured by tflite-micro's
interpreter (in a child process) on the same files; Mult-Adds against the files' weight shapes. Needs the
[tflite] extra; one conversion per file, shared by the module."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")
pytest.importorskip("tflite_micro")

from click.testing import CliRunner  # noqa: E402

from mnetcost.calculator import tflm  # noqa: E402
from mnetcost.calculator.cost import network_cost  # noqa: E402
from mnetcost.calculator.importers import tflite as IT  # noqa: E402
from mnetcost.cli import main  # noqa: E402
from mnetcost.deploy.tflite import file_parts, quiet_tensorflow, silenced, tflm_allocations  # noqa: E402

from model_file_helpers import weight_counts  # noqa: E402

MODES = ("float", "int8", "int8_float_io")


def branched_model():
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    x = keras.Input((16, 16, 3))
    c1 = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    c2 = L.Conv2D(8, 1)(c1)
    added = L.Add()([c1, c2])  # residual: c1 is read twice
    padded = L.ZeroPadding2D(((1, 1), (2, 1)))(added)
    dw = L.DepthwiseConv2D(3, depth_multiplier=2)(padded)
    pooled = L.AveragePooling2D(2, strides=1)(L.MaxPooling2D(2)(dw))
    cat = L.Concatenate()([pooled, L.Conv2D(4, 1)(pooled)])
    gated = L.Multiply()([cat, L.Activation("sigmoid")(cat)])
    t = L.Activation("tanh")(gated)
    h = L.Activation("hard_swish")(L.LeakyReLU(0.1)(t))
    r = L.ReLU(6.0)(L.Subtract()([h, t]))
    out = L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(r))
    return keras.Model(x, out)


def standalone_activations():
    """RELU and RELU6 that nothing before them can fuse (each after a reshape), then a classifier."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    x = keras.Input((8, 8, 4))
    a = L.ReLU()(L.Reshape((16, 16))(x))
    b = L.ReLU(6.0)(L.Reshape((8, 32))(a))
    return keras.Model(x, L.Dense(3)(L.Flatten()(b)))


def mobilenet(version: int = 1, top: str = "softmax"):
    """A Keras application at 32 x 32; ``top=None``: logits (an untrained classifier's softmax input converts
    to a scale TFLM's int8 softmax cannot take: tests/test_import_tflite.py)."""
    import keras

    keras.utils.set_random_seed(0)
    if version == 1:
        return keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=10,
                                            classifier_activation=top)
    return keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10,
                                          classifier_activation=top)


def convert(model, mode: str) -> bytes:
    quiet_tensorflow()
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float":
        rng = np.random.default_rng(0)
        shape = model.input_shape[1:]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, *shape)).astype(np.float32)]
                                                    for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    with silenced():
        return converter.convert()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("converted")
    made = {}
    model = branched_model()
    for mode in MODES:
        made[("branched", mode)] = folder / f"branched_{mode}.tflite"
        made[("branched", mode)].write_bytes(convert(model, mode))
    for mode in ("float", "int8"):
        made[("activations", mode)] = folder / f"activations_{mode}.tflite"
        made[("activations", mode)].write_bytes(convert(standalone_activations(), mode))
    made[("mobilenet", "float")] = folder / "mobilenet_float.tflite"
    made[("mobilenet", "float")].write_bytes(convert(mobilenet(), "float"))
    made[("mobilenet", "int8")] = folder / "mobilenet_int8.tflite"
    made[("mobilenet", "int8")].write_bytes(convert(mobilenet(1, None), "int8"))
    made[("mobilenet_v2", "int8")] = folder / "mobilenet_v2_int8.tflite"
    made[("mobilenet_v2", "int8")].write_bytes(convert(mobilenet(2, None), "int8"))
    return made


KEYS = [("branched", mode) for mode in MODES] + [("activations", "float"), ("activations", "int8"),
                                                 ("mobilenet", "float"), ("mobilenet", "int8"),
                                                 ("mobilenet_v2", "int8")]


@pytest.mark.parametrize("key", KEYS)
def test_the_arena_of_a_converted_file_is_the_interpreters(files, key):
    path = files[key]
    found = IT.read(path)
    assert found.problems == ()
    arena = tflm.graph_arena(found.graph)
    measured = tflm_allocations(path, 1 << 22)
    assert (arena.head, arena.tail) == (measured["head"], measured["tail"])
    buffers = measured["records"]["Persistent buffer data"]
    assert arena.tail_parts["Persistent buffer data"] == buffers["used"]
    macs, params = weight_counts(path)
    cost = network_cost(found.network, "deploy")
    assert (cost.mult_adds, cost.params) == (macs, params)
    parts = file_parts(path.read_bytes())  # the export's reading of a file (the object API)
    assert found.parts == {**{key: parts[key] for key in ("weights", "quantization", "names", "metadata")},
                           "structure": parts["structure and padding"]}


def test_the_branched_file_reads_as_a_graph(files):
    found = IT.read(files[("branched", "int8_float_io")])
    kinds = [layer.kind for layer in found.network.layers]
    assert kinds[0] == "quantize" and kinds[-1] == "quantize"
    builtins = [op.builtin for op in found.operators]
    for builtin in ("ADD", "PAD", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "CONCATENATION",
                    "LOGISTIC", "MUL", "TANH", "LEAKY_RELU", "HARD_SWISH", "SUB", "MEAN", "FULLY_CONNECTED",
                    "SOFTMAX", "QUANTIZE", "DEQUANTIZE"):
        assert builtin in builtins
    network = found.network
    assert network.branched
    add = next(layer for layer in network.layers if layer.kind == "add")
    assert len(add.inputs) == 2  # the residual reads the first conv and the second
    concat = next(layer for layer in network.layers if layer.kind == "concat")
    assert len(concat.inputs) == 2
    dw = next(layer for layer in network.layers if layer.kind == "dw")
    assert (dw.in_h, dw.in_w, dw.delta, dw.out_c) == (18, 19, 2, 16)  # after the asymmetric pad


def test_table_prices_the_converted_file(files):
    path = files[("branched", "int8")]
    result = CliRunner().invoke(main, ["table", "--variant", str(path), "--runtime", "tflm", "--tflm-build",
                                       "host64", "--convention", "deploy", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    measured = tflm_allocations(path, 1 << 22)
    assert report["arena_bytes"] == measured["total"]
    assert report["flash_bytes"] == os.path.getsize(path)
    assert report["mult_adds"] == weight_counts(path)[0]

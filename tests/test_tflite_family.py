"""The MobileNetV2/V3 family on TensorFlow Lite Micro: the export of each member against tflite-micro's
interpreter (file, arena head, tail, total and smallest accepted arena, to the byte), a Keras application the
user converts, and an export without a dataset. Needs the [tflite] extra; skipped without it. The conversions
are slow: one per configuration, shared by the module."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tensorflow")
pytest.importorskip("keras")
pytest.importorskip("tflite_micro")

from click.testing import CliRunner  # noqa: E402

from mnetcost.calculator import tflm  # noqa: E402
from mnetcost.calculator import tflite_model as TM  # noqa: E402
from mnetcost.calculator.cost import network_cost  # noqa: E402
from mnetcost.calculator.resolver import resolve  # noqa: E402
from mnetcost.cli import main  # noqa: E402
from mnetcost.deploy import tflite as TL  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
# (variant, alpha, classes, resolution): (file bytes, head, tail, smallest arena accepted) as the interpreter
# measured them, or None where the figures follow the resolver's width rules as they change (V3-Small at α 0.5:
# its block 7 residual is decided on rounded widths); predicted = measured is asserted for every one
FAMILY = {
    ("mobilenet_v2", 0.35, 10, 96): (615_840, 138_240, 71_872, 210_112),
    ("mobilenet_v3_small", 0.5, 2, 96): None,
    ("mobilenet_v3_large", 0.35, 10, 128): (761_576, 131_072, 76_800, 207_864),
    ("mobilenet_v2_mp3", 0.35, 2, 96): (606_272, 184_320, 72_608, 256_928),
    # CIFAR's size: the last blocks run on 1x1 maps, where the converter makes a residual add a bias add. Its
    # head is small: the smallest accepted arena then also holds the temporary space TFLM takes while it plans
    # (88,056 B measured), which the prediction leaves out, so it is not probed here
    ("mobilenet_v2", 0.35, 10, 32): (616_328, 15_360, 72_176, None),
}
UNPROBED = {("mobilenet_v2", 0.35, 10, 32)}


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    done = {}

    def check(config):
        if config not in done:
            variant, alpha, classes, resolution = config
            network = resolve(variant, alpha, 1, classes, resolution)
            done[config] = TL.crosscheck_tflm(network, tmp_path_factory.mktemp("family"), calibration_images=8,
                                              probe_minimum=config not in UNPROBED)
        return done[config]

    return check


@pytest.mark.parametrize("config", list(FAMILY), ids=lambda c: f"{c[0]}-a{c[1]}-c{c[2]}-r{c[3]}")
def test_family_export_equals_the_prediction_to_the_byte(checks, config):
    result = checks(config)
    rows = {row["quantity"].strip(): row for row in result["rows"]}
    assert [(q, r["predicted"], r["measured"]) for q, r in rows.items() if not r["agree"]] == []
    measured = tuple(rows[q]["measured"] if q in rows else None
                     for q in ("file bytes", "arena head (activations)", "arena tail (persistent)",
                               "smallest arena accepted"))
    assert ("smallest arena accepted" in rows) == (config not in UNPROBED)
    if FAMILY[config] is not None:
        assert tuple(m for m, e in zip(measured, FAMILY[config]) if e is not None) == \
            tuple(e for e in FAMILY[config] if e is not None)
    assert rows["arena total"]["measured"] == measured[1] + measured[2]
    ops = result["operators"]
    adds = sum(layer.kind == "add" for layer in resolve(config[0], config[1], 1, config[2], config[3]).layers)
    assert ops["ADD"] == adds > 0
    if "v3" in config[0]:  # squeeze-excite: a gate MUL and a hard-sigmoid MUL each; hard-swish its own operator
        assert ops["MUL"] % 2 == 0 and ops["HARD_SWISH"] > 0 and ops["MEAN"] == ops["MUL"] // 2 + 1


def test_a_keras_mobilenet_v2_the_user_converts_is_within_its_softmax(tmp_path):
    """keras.applications.MobileNetV2 α 0.35, 96 px, 2 classes (weights=None, a few fit steps so that int8
    calibration has a range), converted int8 by the TensorFlow Lite converter: its operators, its
    count_params (= mnetcost's paper count) and its arena in tflite-micro's interpreter, which is mnetcost's
    prediction for the same configuration plus at most the SOFTMAX's 176 B (mnetcost's file ends at the
    logits). Its names, the SOFTMAX and the converter's metadata make the file larger, not the arena."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=2)
    network = resolve("mobilenet_v2", 0.35, 1, 2, 96)
    assert model.count_params() == network_cost(network, "paper").params == 412_770
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 96, 96, 3)).astype(np.float32)
    model.compile("adam", "categorical_crossentropy")
    with TL.silenced():
        model.fit(x, keras.utils.to_categorical(rng.integers(0, 2, 16), 2), epochs=1, batch_size=8, verbose=0)
    data = TL.convert(model, x)
    assert TL.op_counts(data) == {"ADD": 10, "CONV_2D": 35, "DEPTHWISE_CONV_2D": 17, "FULLY_CONNECTED": 1,
                                  "MEAN": 1, "SOFTMAX": 1}
    path = tmp_path / "user.tflite"
    path.write_bytes(data)
    measured = TL.tflm_allocations(path, 400_000)
    predicted = tflm.arena(network)
    assert measured["head"] == predicted.head
    assert 0 <= measured["total"] - predicted.total <= 176
    parts = TL.file_parts(data)
    ours = TM.file_layout(TM.lower(network)).parts
    assert parts["weights"] == ours["weights"]  # the same int8 weights and int32 biases
    assert parts["names"] > 5 * ours["names"]  # Keras's long tensor names


def test_a_fresh_family_model_exports_without_a_dataset(tmp_path):
    out = tmp_path / "v3.tflite"
    result = CliRunner().invoke(main, ["export", "--variant", "mobilenet_v3_large_mp3", "--alpha", "0.35",
                                       "--resolution", "64", "--classes", "2", "--calibration-images", "8",
                                       "--check-images", "4", "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["quantization"]["calibration_dataset"] == TL.SYNTHETIC
    assert "no dataset given" in record["quantization"]["calibration"]
    assert record["check"]["keras"]["passed"] and record["check"]["tflite_fp32"]["passed"]
    assert record["bytes"] == out.stat().st_size == record["predicted"]["flash_bytes"]
    network = resolve("mobilenet_v3_large_mp3", 0.35, 1, 2, 64)
    assert record["predicted"]["arena_bytes"] == tflm.arena(network).total
    assert record["ops"]["MAX_POOL_2D"] == sum(layer.kind == "maxpool" for layer in network.layers)
    text = CliRunner().invoke(main, ["export", "--variant", "mobilenet_v2", "--alpha", "0.35", "--resolution", "32",
                                     "--classes", "2", "--calibration-images", "4", "--check-images", "2",
                                     "--out", str(tmp_path / "v2.tflite")])
    assert text.exit_code == 0, text.output
    assert "calibrated on 4 random uint8 images (seed 0), no dataset given" in " ".join(text.stdout.split())

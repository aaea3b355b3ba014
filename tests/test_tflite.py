"""TensorFlow Lite: the int8 export of every paper variant and a custom spec, the calculator's Flash and
TensorFlow Lite Micro arena against the real file and interpreter (to the byte), a trained run exported
and evaluated in PyTorch, TensorFlow Lite and TensorFlow Lite Micro. Needs the [tflite] extra; skipped
without it. One conversion per configuration, shared by the module."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")
pytest.importorskip("keras")
pytest.importorskip("tflite_micro")

from click.testing import CliRunner  # noqa: E402

from mnetcost.calculator import tflm  # noqa: E402
from mnetcost.calculator import tflite_model as TM  # noqa: E402
from mnetcost.calculator.resolver import resolve  # noqa: E402
from mnetcost.cli import main  # noqa: E402
from mnetcost.deploy import export as EX  # noqa: E402
from mnetcost.deploy import tflite as TL  # noqa: E402

from cifar_helpers import learnable_images, official_files, train_tiny_fmp_run, write_official_archive  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent
CUSTOM = str(ROOT / "examples" / "custom_spec.toml")
# name -> (variant, alpha, delta, resolution): (file bytes, head, tail), as the interpreter measured them
MEASURED = {
    ("base", 0.25, 1, 32): (298_992, 8_192, 29_744),
    ("base", 0.25, 2, 32): (541_096, 10_240, 39_664),
    ("base", 0.5, 1, 32): (978_208, 12_288, 51_632),
    ("base", 0.5, 2, 32): (1_854_864, 16_384, 71_472),
    ("mp3", 0.25, 1, 32): (299_888, 11_264, 30_544),
    ("mp3", 0.25, 2, 32): (541_992, 11_264, 40_464),
    ("mp3", 0.5, 1, 32): (979_104, 20_480, 52_432),
    ("mp3", 0.5, 2, 32): (1_855_760, 20_480, 72_272),
    ("fmp", 0.25, 1, 32): (304_712, 49_920, 32_992),
    (CUSTOM, 0.5, 2, 64): (49_976, 139_776, 8_560),
    ("base", 0.04, 1, 2): (31_104, 288, 11_504),
}
# the smallest-arena probes (child processes) run here: the arena the interpreter accepted. The tail's gaps
# shrink when the arena ends 8 bytes past a 16-byte boundary; with a small head, loading the model (a
# kernel's temporary tensors, the memory planner's arrays) needs more than head + tail.
PROBED = {("base", 0.25, 1, 32): 8_192 + 29_744 - 8, ("fmp", 0.25, 1, 32): 49_920 + 32_992 - 8,
          ("base", 0.04, 1, 2): 15_752}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    """crosscheck_tflm of a configuration, made once per module on first use."""
    done = {}

    def check(config):
        if config not in done:
            variant, alpha, delta, resolution = config
            folder = tmp_path_factory.mktemp("tflm")
            done[config] = TL.crosscheck_tflm(resolve(variant, alpha, delta, resolution=resolution), folder,
                                              probe_minimum=config in PROBED, calibration_images=8)
        return done[config]

    return check


@pytest.mark.parametrize("config", list(MEASURED), ids=lambda c: f"{Path(c[0]).stem}-a{c[1]}-d{c[2]}")
def test_calculator_equals_the_file_and_the_interpreter(checks, config):
    result = checks(config)
    rows = {row["quantity"].strip(): row for row in result["rows"]}
    disagree = [(q, r["predicted"], r["measured"]) for q, r in rows.items() if not r["agree"]]
    assert disagree == []
    file_bytes, head, tail = MEASURED[config]
    assert rows["file bytes"]["measured"] == file_bytes
    assert (rows["arena head (activations)"]["measured"], rows["arena tail (persistent)"]["measured"]) == (head, tail)
    assert rows["arena total"]["measured"] == head + tail
    if config in PROBED:
        assert rows["smallest arena accepted"]["measured"] == PROBED[config]


def test_fmp_runs_as_gathers_and_max_pools(checks):
    result = checks(("fmp", 0.25, 1, 32))
    assert result["operators"] == {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "FULLY_CONNECTED": 1, "GATHER": 14,
                                   "MAX_POOL_2D": 7, "MEAN": 1}


def test_the_float_file_computes_what_pytorch_computes_and_int8_follows():
    """The Keras model and the float32 conversion against PyTorch's eval output (tolerance as for ONNX:
    float32 sums in another order differ by ~1e-6 of the logits' size); the int8 file in both
    interpreters (its agreement with PyTorch is a trained model's question: the run test below)."""
    network = resolve("fmp", 0.25, 1)
    source = TL.synthetic_source(network, images=16)
    with TL.silenced():
        model = TL.keras_model(source.model)
    x = source.normalization.apply(source.train_images[:8])
    reference = EX.torch_reference(source.model, x)
    with TL.silenced():
        assert EX.compare(reference, TL.keras_outputs(model, TL.nhwc(x)), 1e-4).passed
    float_file = TL.convert(model)
    assert EX.compare(reference, TL.run_tflite(float_file, TL.nhwc(x)), 1e-4).passed
    data = TL.canonical(TL.convert(model, TL.nhwc(source.normalization.apply(source.train_images[:8]))), network)
    int8 = TL.run_tflite(data, TL.nhwc(x))
    arena = tflm.arena(network)
    micro = TL.run_tflm(data, TL.nhwc(x), arena.total)
    reference_kernels = TL.run_tflite(data, TL.nhwc(x), interpreter=TL.tflite_interpreter(data, reference=True))
    # integer arithmetic on any CPU: TensorFlow Lite's reference kernels and TFLM's round alike but for a
    # rare last step (seen: 1 logit of 80, by one step, for this FMP model; XNNPACK's differ by up to ~50)
    q_in, q_out = TL.io_quantization(data)
    assert np.max(np.abs(micro - reference_kernels)) <= q_out.scale * 1.0001
    assert np.mean(micro == reference_kernels) >= 0.9
    assert int8.shape == micro.shape and np.isfinite(int8).all()


# --- a trained run, through the command line --------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny fmp run (seed 3: its FMP draws are not the default's) on a tiny CIFAR-10 archive."""
    run, _, cache, _ = train_tiny_fmp_run(tmp_path_factory.mktemp("run"))
    return run, cache


def test_a_run_exports_to_tflite_and_evaluates_in_three_runtimes(trained_run, tmp_path):
    run, cache = trained_run
    out = tmp_path / "fmp.tflite"
    result = cli("export", "--run", run, "--out", out, "--data-dir", cache, "--calibration-images", "32",
                 "--check-images", "16", "--format", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["format"] == "tflite" and record["bytes"] == out.stat().st_size
    assert record["check"]["keras"]["passed"] and record["check"]["tflite_fp32"]["passed"]
    assert record["predicted"]["flash_bytes"] == out.stat().st_size
    assert record["quantization"]["calibration_images"] == 32
    assert record["metadata"]["fmp_seed"] == 3  # the run's own draws, not the default's
    stored = TL.identity_of(out.read_bytes())  # the file says which run and checkpoint it is
    assert stored == record["metadata"] and stored["run_id"] == json.loads((run / "config.json").read_text())["run_id"]
    assert record["identity_bytes"] == len(TL.identity_bytes(stored)) > 100
    graph = TM.lower(resolve("fmp", 0.25, 1))
    plain, layout = TM.file_layout(graph), TM.file_layout(graph, record["identity_bytes"])
    got = TL.file_parts(out.read_bytes())
    assert layout.bytes == out.stat().st_size
    assert all(layout.parts[part] == got[part] for part in ("weights", "quantization", "names", "metadata"))
    # the calculator's Flash is the model's own file; the metadata adds its JSON and its entry's name
    assert layout.parts["metadata"] - plain.parts["metadata"] == record["identity_bytes"] + len("mnetcost") + 1
    table = cli("export", "--run", run, "--out", tmp_path / "again.tflite", "--data-dir", cache, "--format", "tflite",
                "--calibration-images", "8", "--check-images", "4")
    assert table.exit_code == 0, table.output
    assert "TensorFlow Lite export" in table.stdout and "Flash (predicted)" in table.stdout
    # what int8 costs is said as accuracy on the labelled check images, never as a top-1 agreement
    assert "agreement" not in table.stdout and "accuracy on the first 4 test images" in table.stdout
    result = cli("evaluate", "--run", run, "--torch", "--tflite", out, "--data-dir", cache, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["runtime"], r["dtype"]) for r in rows] == [("torch", "fp32"), ("tflite", "int8"), ("tflm", "int8")]
    assert all(r["images"] == 64 for r in rows)
    assert [r["epoch"] for r in rows] == [record["metadata"]["epoch"]] * 3  # the file's own checkpoint
    torch_correct, tflite_correct, tflm_correct = (r["correct"] for r in rows)
    assert abs(tflite_correct - torch_correct) <= 8 and abs(tflm_correct - tflite_correct) <= 2
    only = cli("evaluate", "--run", run, "--tflite", out, "--runtime", "tflm", "--limit", "5", "--data-dir", cache,
               "--format", "json")
    assert only.exit_code == 0, only.output
    assert json.loads(only.stdout)["runtime"] == "tflm" and json.loads(only.stdout)["images"] == 5


def test_crosscheck_command_prints_every_figure_beside_the_interpreters(tmp_path):
    """A small spec whose classifier reads a feature map (RESHAPE before FULLY_CONNECTED)."""
    spec = tmp_path / "flat.toml"
    spec.write_text('name = "flat"\nin_channels = 3\n[[layers]]\ntype = "conv"\nfilters = 16\nkernel = 3\n'
                    'stride = 2\n[[layers]]\ntype = "dws"\nfilters = 32\nstride = 2\n[[layers]]\ntype = "fc"\n')
    result = cli("crosscheck", "--runtime", "tflm", "--variant", spec, "--alpha", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    quantities = [row["quantity"].strip() for row in obj["rows"]]
    assert quantities[:2] == ["file bytes", "weights"] and "smallest arena accepted" in quantities
    assert obj["agree"] and obj["tflm_version"] == tflm.TFLM_VERSION
    assert obj["operators"] == {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "RESHAPE": 1}
    rows = {row["quantity"].strip(): row["measured"] for row in obj["rows"]}
    assert (rows["file bytes"], rows["arena head (activations)"], rows["arena tail (persistent)"]) == \
        (26_168, 7_168, 2_480)
    table = cli("crosscheck", "--runtime", "tflm", "--variant", spec, "--alpha", "1")
    assert table.exit_code == 0 and "all figures agree to the byte" in table.stdout


def test_a_file_of_another_model_or_not_tflite_is_refused(trained_run, tmp_path):
    run, cache = trained_run
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00not a model")
    result = cli("evaluate", "--run", run, "--tflite", garbage, "--data-dir", cache)
    assert result.exit_code == 2 and "not a TensorFlow Lite model" in result.stderr
    other = tmp_path / "other.tflite"
    network = resolve("base", 0.25, 1, classes=100)
    source = TL.synthetic_source(network, images=4)
    with TL.silenced():
        model = TL.keras_model(source.model)
    other.write_bytes(TL.canonical(TL.convert(model, TL.nhwc(source.normalization.apply(source.train_images))),
                                   network))
    result = cli("evaluate", "--run", run, "--tflite", other, "--data-dir", cache)
    assert result.exit_code == 2 and "100" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert TM.flash_bytes(network) == other.stat().st_size
    # the run's own configuration, but nothing ties the file to the run: refused
    own = resolve("fmp", 0.25, 1)
    source = TL.synthetic_source(own, images=4)
    with TL.silenced():
        model = TL.keras_model(source.model)
    raw = TL.convert(model, TL.nhwc(source.normalization.apply(source.train_images)))
    anonymous = tmp_path / "anonymous.tflite"
    anonymous.write_bytes(TL.canonical(raw, own))
    result = cli("evaluate", "--run", run, "--tflite", anonymous, "--data-dir", cache)
    assert result.exit_code == 2 and "holds no mnetcost metadata" in result.stderr
    # a file that says it is another run's model (its run id)
    from mnetcost.deploy import evaluate as EV

    meta = {**EV.run_metadata(EV.open_run(run, "best")), "run_id": "0" * 32}
    foreign = tmp_path / "foreign.tflite"
    foreign.write_bytes(TL.canonical(raw, own, TL.identity_bytes(meta)))
    result = cli("evaluate", "--run", run, "--tflite", foreign, "--data-dir", cache)
    assert result.exit_code == 2 and "not a model of the run" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1

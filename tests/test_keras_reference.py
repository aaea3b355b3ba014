"""The family against a reference written elsewhere: Keras applications' MobileNet, MobileNetV2,
MobileNetV3Small and MobileNetV3Large (weights=None), built at the same alpha, classes and input
size, compared layer by layer with mnetcost's resolved network under ``rounding = "keras"``:
output shapes, Mult-Adds (counted from the Keras layers' own kernels and shapes), params
(count_params = the paper convention) and the residual adds. Needs the [tflite] extra (Keras)."""
import pytest

from mnetcost.calculator.resolver import resolve

keras = pytest.importorskip("keras")
KR = pytest.importorskip("mnetcost.deploy.keras_reference")

# 0.10 .. 1.40 in steps of 0.05, and the narrow alphas where a residual add or a V3 expansion flips
# (V2 block 1 up to 0.27; V3-Small block 7: 0.18/0.23, 0.37/0.45, 0.55/0.67, 0.74, 0.89-0.91;
# V3-Large block 11: 0.12-0.15, 0.23; where Keras's MobileNetV2 rounds int(c * alpha): 0.28, 0.56, 0.745)
STEPS = [round(0.10 + 0.05 * i, 2) for i in range(27)]
NARROW = [0.12, 0.13, 0.14, 0.18, 0.23, 0.27, 0.28, 0.37, 0.45, 0.55, 0.56, 0.67, 0.74, 0.745, 0.89, 0.91]
FINE = sorted(set(STEPS + NARROW))
COARSE = [round(0.10 + 0.10 * i, 2) for i in range(14)] + [0.14, 0.23, 0.27]  # the second resolution


def disagreements(variant, alphas, resolution, classes, rounding="keras", delta=1):
    """Every alpha whose resolved network differs from Keras's build, with what differs."""
    found = []
    for alpha in alphas:
        check = KR.crosscheck_keras(resolve(variant, alpha, delta, classes, resolution, rounding=rounding))
        if not check.agree:
            bad = check.disagreeing
            found.append((alpha, [(row["quantity"], row["mnetcost"], row["keras"]) for row in check.totals
                                  if row["mnetcost"] != row["keras"]],
                          (bad[0].name, bad[0].keras_name, bad[0].output_shape, bad[0].keras_output_shape)
                          if bad else None))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"])
@pytest.mark.parametrize("resolution,classes,alphas", [(96, 10, FINE), (161, 7, COARSE)])
def test_the_family_matches_keras_applications_at_every_alpha(variant, resolution, classes, alphas):
    assert disagreements(variant, alphas, resolution, classes) == []


@pytest.mark.slow
@pytest.mark.parametrize("resolution", [32, 128])
def test_base_matches_keras_mobilenet(resolution):
    assert disagreements("base", [0.1, 0.25, 0.29, 0.5, 0.75, 1.0, 1.4], resolution, 10) == []
    assert disagreements("base", [0.25, 0.5], resolution, 100, delta=2) == []  # Keras's depth_multiplier


def test_the_residual_adds_and_widths_agree_with_keras_where_they_used_to_differ():
    # V2 block 1 at alpha 0.25 (a residual Keras adds: 8 -> 8 channels), V3-Small block 7 at 0.35
    # (40 and 48 both round to 16), V3-Large at 0.1
    for variant, alpha in (("mobilenet_v2", 0.25), ("mobilenet_v3_small", 0.35), ("mobilenet_v3_large", 0.1)):
        check = KR.crosscheck_keras(resolve(variant, alpha, 1, 10, 96, rounding="keras"))
        assert check.agree, (variant, alpha, check.totals, check.disagreeing[:1])
    v2 = KR.crosscheck_keras(resolve("mobilenet_v2", 0.25, 1, 10, 96, rounding="keras"))
    assert "block1_add" in v2.add_names and v2.build.adds == v2.adds == 11


def test_torchvision_widths_differ_from_keras_where_the_rules_differ():
    # torchvision scales V3's stem (8 channels at alpha 0.35); Keras keeps 16
    check = KR.crosscheck_keras(resolve("mobilenet_v3_small", 0.35, 1, 10, 96))
    assert not check.agree
    assert (check.layers[0].output_shape, check.layers[0].keras_output_shape) == ((48, 48, 8), (48, 48, 16))


def test_crosscheck_reference_keras_on_the_command_line():
    from cli_helpers import cli_here

    good = cli_here("crosscheck", "--reference", "keras", "-v", "mobilenet_v3_large", "-a", "0.1", "-r", "96",
                    "-c", "10")
    assert good.returncode == 0, good.stderr
    assert "every layer and total agrees" in good.stdout and "residual adds" in good.stdout
    bad = cli_here("crosscheck", "--reference", "keras", "-v", "mobilenet_v3_small", "-a", "0.35", "-r", "96",
                   "-c", "10", "--rounding", "divisible8")
    assert bad.returncode == 1
    assert "first at conv1 / conv: 48×48×8 vs 48×48×16" in bad.stderr and bad.stderr.count("\n") == 1
    for args, message in (
        (("-v", "mobilenet_v2_mp3"), "no Keras application builds mobilenet_v2_mp3"),
        (("-v", "mobilenet_v2", "-d", "2"), "has no depth multiplier"),
        (("-v", "base", "--all"), "--all does not apply to --reference keras"),
    ):
        result = cli_here("crosscheck", "--reference", "keras", *args)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr

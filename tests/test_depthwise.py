"""Depthwise convolutions with delta > 1 computed as multiplier-1 kernels over repeated channels
(``--depthwise expand``, the default of ``mnetcost train``): the same layer, the same outputs up
to float rounding."""
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings, strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from mnetcost import build_model  # noqa: E402
from mnetcost.errors import ConfigError  # noqa: E402
from mnetcost.nn import training as T  # noqa: E402
from mnetcost.nn.datasets import Dataset  # noqa: E402
from mnetcost.nn.models import DepthwiseConv2d, repeat_channels, set_depthwise  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
FORMATS = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}

# float32 rounding: k products summed in float32 in any order (with or without fused multiply-adds,
# any SIMD width) are within gamma(k) * sum |products| of the exact sum, k numbers summed within
# gamma(k - 1) * sum |numbers| (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed.,
# sections 3.1 and 4.2). That holds on every CPU whatever its kernels: the tests below bound
# float32 results by it, measured against float64. Different kernels give different bits, so no
# test here claims bit equality between the grouped and the expand path.
UNIT_ROUNDOFF = 2.0 ** -24


def gamma(k: int) -> float:
    return k * UNIT_ROUNDOFF / (1 - k * UNIT_ROUNDOFF)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 6), h=st.integers(1, 5), w=st.integers(1, 5), times=st.integers(1, 4),
       layout=st.sampled_from(sorted(FORMATS)))
def test_repeat_channels_is_repeat_interleave_forward_and_backward(n, c, h, w, times, layout):
    fmt = FORMATS[layout]
    x = torch.randn(n, c, h, w).to(memory_format=fmt).requires_grad_()
    y = repeat_channels(x, times)
    expected = x.repeat_interleave(times, dim=1)
    assert torch.equal(y, expected)
    if not x.is_contiguous() or layout == "nchw":  # a tensor that is both (C = 1, or 1x1) has no one layout
        assert y.is_contiguous(memory_format=fmt)
    grad = torch.randn_like(expected)
    (ours,) = torch.autograd.grad(y, x, grad)
    (reference,) = torch.autograd.grad(expected, x, grad)
    # each input's gradient is the sum of its ``times`` copies' gradients: both float32 sums are
    # within gamma(times - 1) * sum |terms| of the float64 sum, whatever the order (exact for 1 copy)
    slices = grad.double().reshape(n, c, times, h, w)
    exact, magnitude = slices.sum(2), slices.abs().sum(2)
    for got in (ours, reference):
        assert ((got.double() - exact).abs() <= gamma(times - 1) * magnitude).all()


def test_repeat_channels_passes_gradcheck():
    x = torch.randn(2, 3, 4, 5, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda t: repeat_channels(t, 3), x.clone().requires_grad_())
    cl = x.to(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: repeat_channels(t, 2), cl)


@pytest.mark.parametrize("delta,expected", [(1, 0), (2, 13), (4, 13)])
def test_only_depthwise_layers_with_a_multiplier_are_depthwise_modules(delta, expected):
    model = build_model("fmp", alpha=0.25, delta=delta)
    depthwise = [name for name, module in model.named_modules() if isinstance(module, DepthwiseConv2d)]
    assert len(depthwise) == expected
    assert all(name.startswith("conv_dw_") and name.endswith(".conv") for name in depthwise)
    assert all(not module.expand_input for module in model.modules() if isinstance(module, DepthwiseConv2d))
    # the same parameters under the same names as a plain grouped nn.Conv2d
    for name in depthwise:
        conv = model.get_submodule(name)
        assert isinstance(conv, nn.Conv2d) and conv.groups == conv.in_channels
        assert conv.weight.shape == (conv.in_channels * delta, 1, 3, 3)


@pytest.mark.parametrize("delta", [2, 4])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("layout", sorted(FORMATS))
def test_expand_computes_the_depthwise_layer_and_its_gradients_within_float32_rounding(delta, stride, layout):
    """One layer, both paths (the grouped kernel and expand's multiplier-1 kernel over repeated
    channels), against the float64 layer: every output and gradient element within the rounding
    bound of the sum it is. The two paths run different kernels, so no bit equality is claimed."""
    fmt = FORMATS[layout]
    torch.manual_seed(0)
    c, n, size = 5, 4, 11
    layer = DepthwiseConv2d(c, c * delta, 3, stride=stride, padding=1, groups=c, bias=False)
    x = torch.randn(n, c, size, size).to(memory_format=fmt)
    w = layer.weight.detach()
    xd, wd = x.double().requires_grad_(), w.double().requires_grad_()
    exact = nn.functional.conv2d(xd, wd, None, stride, 1, 1, c)
    g = torch.randn(exact.shape).to(memory_format=fmt)
    exact_dx, exact_dw = torch.autograd.grad(exact, (xd, wd), g.double())
    # the same sums over absolute values: what each element's rounding error is measured against
    xa, wa = x.double().abs().requires_grad_(), w.double().abs().requires_grad_()
    magnitude = nn.functional.conv2d(xa, wa, None, stride, 1, 1, c)
    magnitude_dx, magnitude_dw = torch.autograd.grad(magnitude, (xa, wa), g.double().abs())
    # terms per element: 9 per output; 9 per repeated channel, delta repeats added, per input
    # gradient; one per output position and image per weight gradient (+1: float64's own rounding)
    bounds = {"output": gamma(9 + 1) * magnitude, "input gradient": gamma(9 * delta + 1) * magnitude_dx,
              "weight gradient": gamma(n * exact.shape[2] * exact.shape[3] + 1) * magnitude_dw}
    for mode in ("grouped", "expand"):
        layer.expand_input = mode == "expand"
        xi = x.clone().requires_grad_()
        y = layer(xi)
        assert y.shape == exact.shape and (layout == "nchw" or y.is_contiguous(memory_format=fmt))
        dx, dw = torch.autograd.grad(y, (xi, layer.weight), g)
        for what, got, want in (("output", y, exact), ("input gradient", dx, exact_dx),
                                ("weight gradient", dw, exact_dw)):
            excess = (got.double() - want).abs() - bounds[what]
            assert excess.max().item() <= 0, (mode, what)


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
@pytest.mark.parametrize("delta", [2, 4])
@pytest.mark.parametrize("layout", sorted(FORMATS))
def test_expand_gives_the_whole_model_the_same_outputs_and_gradients(variant, delta, layout):
    """The whole model in float64, train and eval (FMP draws, dropout, BatchNorm), with and
    without expand: the same function, so the same outputs and gradients up to float64 rounding.

    Why float64: the two paths differ only in summation order, but in float32 a difference of one
    rounding in an early layer is amplified by the layers after it (BatchNorm over 6 images
    divides by small spreads) and can move a ReLU or max-pooling input across its kink, which
    changes a gradient entirely; how far depends on the CPU's kernels (up to 5e-5 of the logits on
    an AVX2 machine). float64's rounding is 2^29 times smaller: the differences measured are
    ~1e-13 of the largest value (~1,000 float64 roundings), so 1e-9 leaves a margin of 10^4 that
    no CPU's summation order uses up, while any real mismatch (a wrong channel, a weight read
    twice) is of the order of the values themselves. The per-layer float32 bound is the test above."""
    fmt = FORMATS[layout]
    torch.manual_seed(0)
    grouped = build_model(variant, alpha=0.25, delta=delta).double().to(memory_format=fmt)
    expand = set_depthwise(build_model(variant, alpha=0.25, delta=delta), "expand").double().to(memory_format=fmt)
    expand.load_state_dict(grouped.state_dict())
    x = torch.randn(6, 3, 32, 32, dtype=torch.double).to(memory_format=fmt)
    relative = 1e-9
    for training in (True, False):
        grouped.train(training)
        expand.train(training)
        torch.manual_seed(1)  # the same FMP draws and dropout masks
        a = grouped(x)
        torch.manual_seed(1)
        b = expand(x)
        assert (b - a).abs().max().item() <= relative * a.abs().max().item(), (variant, delta, training)
    labels = torch.arange(6) % 10
    for model in (grouped, expand):
        model.train()
        model.zero_grad()
        torch.manual_seed(2)
        nn.functional.cross_entropy(model(x), labels).backward()
    # BatchNorm's weight gradients cancel to near 0, so every difference is measured against the
    # largest gradient of the model
    scale = max(p.grad.abs().max().item() for p in grouped.parameters())
    for (name, p), q in zip(grouped.named_parameters(), expand.parameters()):
        assert (q.grad - p.grad).abs().max().item() <= relative * scale, name


def test_set_depthwise_refuses_an_unknown_mode_and_switches_back():
    model = build_model("base", alpha=0.25, delta=2)
    with pytest.raises(ConfigError, match="depthwise must be one of expand, grouped"):
        set_depthwise(model, "fast")
    set_depthwise(model, "expand")
    assert all(m.expand_input for m in model.modules() if isinstance(m, DepthwiseConv2d))
    set_depthwise(model, "grouped")
    assert not any(m.expand_input for m in model.modules() if isinstance(m, DepthwiseConv2d))


def test_fvcore_counts_the_same_with_and_without_expand():
    fvcore = pytest.importorskip("fvcore.nn")
    from mnetcost.calculator.cost import network_cost

    model = build_model("base", alpha=0.25, delta=2).eval()
    engine = {row.layer.name: row.mult_adds for row in network_cost(model.network, "paper").layers}  # conv MACs
    x = torch.randn(1, 3, 32, 32)
    counts = []
    for mode in ("grouped", "expand"):
        analysis = fvcore.FlopCountAnalysis(set_depthwise(model, mode), x)
        counts.append(analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).by_module())
    for name in (f"conv_dw_{i}" for i in range(1, 14)):
        assert counts[0][name + ".conv"] == counts[1][name + ".conv"] == engine[name] > 0, name


def _learnable_dataset(n=96):
    """Images whose colour gives the class, so a few epochs visibly lower the loss."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 10
    noise = torch.randint(0, 40, (n, 3, 32, 32), generator=g)
    images = (labels.view(-1, 1, 1, 1) * 20 + noise).to(torch.uint8)
    return Dataset(name="colours", source="generated", class_names=tuple(map(str, range(10))),
                   train_x=images.numpy(), train_y=labels.numpy(), test_x=images[:32].numpy(),
                   test_y=labels[:32].numpy())


def test_training_with_expand_follows_grouped_and_lowers_the_loss(tmp_path):
    dataset = _learnable_dataset()
    histories = {}
    for mode in ("grouped", "expand"):
        # one batch per epoch: the first epoch's loss is the untrained model's, before any update
        config = T.TrainConfig(variant="fmp", alpha=0.25, delta=2, classes=10, resolution=[32, 32],
                               dataset="colours", epochs=4, batch_size=96, seed=0, device="cpu", bn_batches=1,
                               depthwise=mode)
        result = T.run(config, dataset, tmp_path / mode, quiet=True)
        histories[mode] = [row["loss"] for row in result.history]
        stored = json.loads((tmp_path / mode / "config.json").read_text())
        assert stored["config"]["depthwise"] == mode
        assert histories[mode][-1] < 0.9 * histories[mode][0], histories
    # Before the first update the two losses differ only by the forward pass's float32 rounding:
    # cross-entropy moves by at most twice the largest logit change, and the largest seen on any
    # CPU was 5.1e-5 (an AVX2 machine), so 5e-4 is 5 times that. Later epochs are not compared: a
    # rounding difference that moves a ReLU or max input across its kink changes a gradient
    # entirely, and the runs drift apart by amounts that depend on the CPU.
    assert abs(histories["expand"][0] - histories["grouped"][0]) <= 5e-4, histories


def test_the_default_is_expand_and_a_run_that_recorded_none_resumes_grouped():
    assert T.TrainConfig().depthwise == "expand"
    assert T.LEGACY["depthwise"] == "grouped"


def test_the_cli_refuses_a_bad_depthwise_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnetcost", "train", "--depthwise", "fast", "--out",
                             str(tmp_path / "run")], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--depthwise" in result.stderr and not (tmp_path / "run").exists()

"""Depthwise convolutions with delta > 1 computed as multiplier-1 kernels over repeated channels
(``--depthwise expand``, the default of ``mnetcost train``): the same layer, the same outputs."""
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
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)


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


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
@pytest.mark.parametrize("delta", [2, 4])
@pytest.mark.parametrize("layout", sorted(FORMATS))
def test_expand_gives_the_same_outputs_bit_for_bit_and_the_same_gradients(variant, delta, layout):
    fmt = FORMATS[layout]
    torch.manual_seed(0)
    grouped = build_model(variant, alpha=0.25, delta=delta).to(memory_format=fmt)
    expand = set_depthwise(build_model(variant, alpha=0.25, delta=delta), "expand").to(memory_format=fmt)
    expand.load_state_dict(grouped.state_dict())
    x = torch.randn(6, 3, 32, 32).to(memory_format=fmt)
    for training in (True, False):
        grouped.train(training)
        expand.train(training)
        torch.manual_seed(1)  # the same FMP draws and dropout masks
        a = grouped(x)
        torch.manual_seed(1)
        b = expand(x)
        if layout == "channels_last":  # oneDNN's kernels sum in the same order: the same bits
            assert torch.equal(a, b), (variant, delta, training)
        else:
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    labels = torch.arange(6) % 10
    for model in (grouped, expand):
        model.train()
        model.zero_grad()
        torch.manual_seed(2)
        nn.functional.cross_entropy(model(x), labels).backward()
    # only float summation order differs; BatchNorm's weight gradients cancel to near 0, so every
    # difference is measured against the largest gradient of the model (about 1e-6 of it here)
    scale = max(p.grad.abs().max().item() for p in grouped.parameters())
    for (name, p), q in zip(grouped.named_parameters(), expand.parameters()):
        assert (q.grad - p.grad).abs().max().item() <= 1e-5 * scale, name


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
        config = T.TrainConfig(variant="fmp", alpha=0.25, delta=2, classes=10, resolution=[32, 32],
                               dataset="colours", epochs=3, batch_size=32, seed=0, device="cpu", bn_batches=1,
                               depthwise=mode)
        result = T.run(config, dataset, tmp_path / mode, quiet=True)
        histories[mode] = [row["loss"] for row in result.history]
        stored = json.loads((tmp_path / mode / "config.json").read_text())
        assert stored["config"]["depthwise"] == mode
        assert histories[mode][-1] < 0.9 * histories[mode][0], histories
    # the first epoch differs only by float summation order; later epochs drift apart as rounding compounds
    assert histories["expand"][0] == pytest.approx(histories["grouped"][0], rel=1e-3)


def test_the_default_is_expand_and_a_run_that_recorded_none_resumes_grouped():
    assert T.TrainConfig().depthwise == "expand"
    assert T.LEGACY["depthwise"] == "grouped"


def test_the_cli_refuses_a_bad_depthwise_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnetcost", "train", "--depthwise", "fast", "--out",
                             str(tmp_path / "run")], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--depthwise" in result.stderr and not (tmp_path / "run").exists()

"""PyTorch models built from the resolved layers: names, blocks, padding, shapes, custom specs."""
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from mnetcost import ConfigError, build_model  # noqa: E402
from mnetcost.nn.fmp import FractionalMaxPool2d, TorchFractionalMaxPool2d  # noqa: E402
from mnetcost.nn.models import DepthwiseConv2d, MobileNet, build_from_network  # noqa: E402
from mnetcost.calculator.resolver import resolve  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
@pytest.mark.parametrize("resolution", [32, (40, 48)])
def test_forward_gives_logits_for_each_variant(variant, resolution):
    torch.manual_seed(0)
    model = build_model(variant, alpha=0.25, delta=2, classes=7, resolution=resolution)
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    x = torch.randn(2, 3, height, width)
    for training in (True, False):
        model.train(training)
        out = model(x)
        assert out.shape == (2, 7) and out.dtype == torch.float32 and torch.isfinite(out).all()
    model.train()
    model(x).logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
def test_every_intermediate_shape_matches_the_resolved_layer(variant):
    model = build_model(variant, alpha=0.5, delta=3, classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    layers = {layer.name: layer for layer in model.network.layers}
    for name, module in model.named_children():
        x = module(x)
        if name in layers and x.dim() == 4:
            layer = layers[name]
            assert tuple(x.shape[1:]) == (layer.out_c, layer.out_h, layer.out_w), name


def test_module_names_are_the_resolved_layer_names_in_order():
    model = build_model("fmp", alpha=0.25, delta=2)
    assert isinstance(model, MobileNet) and model.network.variant == "fmp"
    names = [name for name, _ in model.named_children()]
    layer_names = [layer.name for layer in model.network.layers]
    assert [n for n in names if n not in ("flatten", "dropout")] == layer_names
    assert names[-3:] == ["flatten", "dropout", "fc"]
    assert layer_names[:4] == ["conv1", "fmp_1", "conv_dw_1", "conv_pw_1"]


def test_blocks_follow_the_paper_and_keras():
    model = build_model("base", alpha=0.5, delta=2, classes=100)
    dw, pw = model.conv_dw_2, model.conv_pw_2
    # depthwise: C -> C*delta, groups = C, no bias; 3x3 stride 2 on an even size pads (0, 1, 0, 1) like TF 'same'
    assert isinstance(dw.pad, nn.ConstantPad2d) and dw.pad.padding == (0, 1, 0, 1) and dw.pad.value == 0
    assert (dw.conv.in_channels, dw.conv.out_channels, dw.conv.groups) == (32, 64, 32)
    assert dw.conv.kernel_size == (3, 3) and dw.conv.stride == (2, 2) and dw.conv.bias is None
    assert [type(m) for m in dw] == [nn.ConstantPad2d, DepthwiseConv2d, nn.BatchNorm2d, nn.ReLU]
    assert isinstance(dw.conv, nn.Conv2d)  # with delta > 1 a Conv2d subclass (same weights; see test_depthwise)
    # pointwise: 1x1, no bias, BN, ReLU
    assert (pw.conv.in_channels, pw.conv.out_channels, pw.conv.kernel_size, pw.conv.bias) == (64, 64, (1, 1), None)
    assert [type(m) for m in pw] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    # stride 1: symmetric padding inside the conv, no pad module
    assert model.conv_dw_1.conv.padding == (1, 1) and not hasattr(model.conv_dw_1, "pad")
    assert model.conv_dw_1.bn.eps == 1e-3 and model.conv_dw_1.bn.momentum == 0.01  # Keras's defaults
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d)
    assert model.dropout.p == 0.1 and build_model("base", alpha=0.25, dropout=0.3).dropout.p == 0.3
    assert (model.fc.in_features, model.fc.out_features) == (512, 100) and model.fc.bias is not None


def test_asymmetric_padding_equals_tensorflow_same():
    model = build_model("base", alpha=0.25).eval()
    block = model.conv1
    x = torch.randn(1, 3, 32, 32)
    # TF 'same' for 3x3 stride 2 on 32: output 16, padding 0 before and 1 after on each axis
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), block.conv.weight, stride=2)
    assert torch.allclose(block.conv(block.pad(x)), expected)
    assert block.conv(block.pad(x)).shape[-1] == 16


def test_max_pooling_pads_with_minus_infinity():
    model = build_model("mp3", alpha=0.25).eval()
    pool = model.maxpool_1  # 3x3/2 on 32x32: TF pads (0, 1, 0, 1)
    x = -1 - torch.rand(1, 2, 32, 32)  # every value negative: a zero pad would win at the edge
    y = pool(x)
    assert y.shape == (1, 2, 16, 16)
    assert (y < -1).all()
    assert torch.equal(y[..., -1, -1], x[..., 30:, 30:].amax(dim=(-2, -1)))


def test_build_from_network_reads_the_network_it_is_given():
    network = resolve("mp3", alpha=0.75, delta=3, classes=37, resolution=64)
    model = build_from_network(network, dropout=0.0)
    assert model.network is network
    assert model.conv_dw_5.conv.out_channels == network.layer("conv_dw_5").out_c == int(256 * 0.75) * 3
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 37)


def test_fmp_modes():
    tf_model = build_model("fmp", alpha=0.25, fmp_mode="tf")
    torch_model = build_model("fmp", alpha=0.25, fmp_mode="torch")
    assert isinstance(tf_model.fmp_1, FractionalMaxPool2d) and tf_model.fmp_1.ratio == 1.44
    assert isinstance(torch_model.fmp_1, TorchFractionalMaxPool2d)
    assert tf_model.fmp_1.seed != tf_model.fmp_2.seed  # each layer its own fixed eval draw
    x = torch.randn(2, 3, 32, 32)
    for model in (tf_model, torch_model):
        model.eval()
        assert torch.equal(model(x), model(x))
        probs = model.predict_averaged(x, draws=3)
        assert probs.shape == (2, 10) and torch.allclose(probs.sum(-1), torch.ones(2))


def test_a_custom_spec_builds(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        'name = "tiny"\nin_channels = 1\n'
        '[[layers]]\ntype = "conv"\nfilters = 16\nkernel = 5\nstride = 2\n'
        '[[layers]]\ntype = "maxpool"\nkernel = 2\nstride = 2\n'
        '[[layers]]\ntype = "dws"\nfilters = 24\nkernel = 5\nrepeat = 2\n'
        '[[layers]]\ntype = "fmp"\nratio = 1.7\n'
        '[[layers]]\ntype = "dws"\nfilters = 32\nstride = 2\n'
        '[[layers]]\ntype = "fc"\n',
        encoding="utf-8",
    )
    model = build_model(str(spec), alpha=0.5, delta=2, classes=3, resolution=28).eval()
    assert model.network.variant == "tiny"
    # no avgpool: the classifier reads the flattened map
    last = model.network.layers[-2]
    assert model.fc.in_features == last.out_h * last.out_w * last.out_c
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="dropout"):
        build_model("base", alpha=0.25, dropout=1.5)
    with pytest.raises(ConfigError, match="fmp_mode"):
        build_model("fmp", alpha=0.25, fmp_mode="keras")
    with pytest.raises(ConfigError, match="activation"):
        build_model("base", alpha=0.25, activation="gelu")
    with pytest.raises(ConfigError, match="alpha"):
        build_model("base", alpha=0)


def test_relu6_option():
    model = build_model("base", alpha=0.25, activation="relu6")
    assert isinstance(model.conv1.relu, nn.ReLU6)


def test_crosscheck_command_module_imports_nothing_heavy():
    code = ("import sys, mnetcost.cli.commands.crosscheck, mnetcost.cli\n"
            "print(sorted(m for m in ('torch', 'fvcore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_slice_of_the_model_runs():
    model = build_model("base", alpha=0.25).eval()
    head = model[:3]
    assert [name for name, _ in head.named_children()] == ["conv1", "conv_dw_1", "conv_pw_1"]
    assert head(torch.randn(1, 3, 32, 32)).shape == (1, 16, 16, 16)


# --- a fresh model under the tracers: fvcore, torch.jit.trace, ONNX (TorchScript exporter) ------
# Each test builds its model and traces it on the very first call, with gradients enabled (the
# tracers' default): FMP's per-shape index tables and its hand-written backward pass once made all
# three fail ("unordered_map::at") or trace differently on the second call.
FRESH = [("fmp", {}), ("fmp", {"fmp_overlapping": True}), ("fmp", {"fmp_mode": "torch"}), ("mp3", {}), ("base", {})]
FRESH_IDS = ["fmp", "fmp-overlapping", "fmp-torch", "mp3", "base"]


def _fresh(variant, options):
    return build_model(variant, alpha=0.3, delta=3, classes=37, **options).eval()


@pytest.mark.parametrize("variant,options", FRESH, ids=FRESH_IDS)
def test_fvcore_counts_a_fresh_model_on_the_first_call(variant, options):
    fvcore = pytest.importorskip("fvcore.nn")
    from mnetcost.calculator.cost import network_cost

    model = _fresh(variant, options)
    x = torch.randn(1, 3, 32, 32)
    analysis = fvcore.FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert analysis.total() == network_cost(model.network, "fvcore").mult_adds > 0


@pytest.mark.parametrize("variant,options", FRESH, ids=FRESH_IDS)
def test_jit_trace_of_a_fresh_model_passes_its_check_and_computes_the_model(variant, options):
    import warnings

    model = _fresh(variant, options)
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        # check_trace=True traces again and compares: differing graphs raise, differing outputs only warn
        warnings.filterwarnings("error", message=".*(does not match|nondeterministic)", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(model, x)
    other = torch.randn(2, 3, 32, 32)  # other images, the same batch (fmp_mode torch draws per image)
    with torch.no_grad():
        # the trace replays the same ATen kernels on the same data in the same order: the same bits
        assert torch.equal(traced(other), model(other))


@pytest.mark.parametrize("variant,options", [case for case in FRESH if case[1].get("fmp_mode") != "torch"],
                         ids=[i for i in FRESH_IDS if i != "fmp-torch"])
def test_onnx_torchscript_export_of_a_fresh_model_computes_the_model(variant, options, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import warnings

    model = _fresh(variant, options)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 3, 32, 32),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    x = torch.randn(4, 3, 32, 32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        exact = model.double()(x.double())
    # ONNX Runtime's float32 kernels round differently from PyTorch's, so no bit equality: the bound
    # is export's own acceptance test (mnetcost.deploy.export.DEFAULT_TOLERANCE = 1e-4 of the logit
    # scale), measured against the float64 model: ~1,700 float32 roundings at that scale, far above
    # what 28 float32 layers lose, far below what a wrong window or a missing layer changes.
    from mnetcost.deploy.export import DEFAULT_TOLERANCE

    allowed = DEFAULT_TOLERANCE * max(1.0, exact.abs().max().item())
    assert (torch.from_numpy(got).double() - exact).abs().max().item() <= allowed


@pytest.mark.parametrize("args, words", [
    (dict(alpha=2_000.0), "layer conv_pw_1: its weights would have 8,192,000,000 elements"),
    (dict(alpha=1.0, resolution=50_000), "layer conv1: its input would have 7,500,000,000 elements"),
    (dict(alpha=40.0), "the network would have 5,026,001,930 weights"),
])
def test_a_network_too_large_to_build_is_refused_before_torch_allocates_it(args, words):
    with pytest.raises(ConfigError, match=words):
        build_model("base", **args)

"""A user's own PyTorch module and ONNX file priced like a spec: ``mnetcost.from_torch`` and the ONNX
importer against fvcore (its FlopCountAnalysis and parameter_count, written elsewhere) on a ResNet-like
network with 1x1 projection shortcuts and on a MobileNetV3-like one (depthwise conv, hard-swish,
squeeze-excite gate)."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
fvcore_nn = pytest.importorskip("fvcore.nn")

from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402

import mnetcost  # noqa: E402
from mnetcost.cli import main  # noqa: E402
from mnetcost.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        y = self.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + self.shortcut(x))


class ResNetLike(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class SqueezeExciteNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 32, 3, 1, 1, groups=16, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, 8, 1), nn.ReLU(), nn.Conv2d(8, 32, 1),
                                nn.Hardsigmoid())
        self.project = nn.Sequential(nn.Conv2d(32, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.pool = nn.AdaptiveAvgPool2d(1)  # fvcore counts this pool (not a .mean(), which it skips)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.conv(x)
        y = self.dw(x)
        y = self.project(y * self.se(y)) + x
        return self.head(self.pool(y).flatten(1))


def randomised(model):
    """BatchNorm with statistics that are not the identity (so that a folded export keeps its biases)."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


def fvcore_counts(model, shape):
    analysis = fvcore_nn.FlopCountAnalysis(model, torch.zeros((1, *shape)))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return fvcore_nn.parameter_count(model)[""], analysis.total()


@pytest.mark.parametrize("make", [ResNetLike, SqueezeExciteNet])
def test_from_torch_prices_a_module_as_fvcore_counts_it(make):
    model = randomised(make())
    network = mnetcost.from_torch(model, (3, 32, 32))
    cost = mnetcost.network_cost(network, "fvcore")
    assert (cost.params, cost.mult_adds) == fvcore_counts(model, (3, 32, 32))
    assert cost.memory.peak_activation_bytes > 0  # the memory functions take it too


def test_the_resnet_reads_as_a_graph_with_its_shortcuts():
    network = mnetcost.from_torch(ResNetLike(), (3, 32, 32))
    assert network.branched
    adds = [layer for layer in network.layers if layer.kind == "add"]
    assert len(adds) == 3
    shortcuts = [layer for layer in network.layers if layer.kind == "conv" and layer.kernel == 1]
    assert [(s.in_c, s.out_c, s.stride, s.bn) for s in shortcuts] == [(16, 32, 2, True), (32, 64, 2, True)]
    assert adds[0].inputs[1] == "conv_1"  # the identity shortcut reads the stem's output


def test_onnx_with_batchnorm_kept_prices_as_fvcore(tmp_path):
    pytest.importorskip("onnx")
    from mnetcost.calculator.importers import onnx as IO

    model = randomised(ResNetLike())
    path = tmp_path / "resnet.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False,
                      training=torch.onnx.TrainingMode.TRAINING)
    model.eval()
    cost = mnetcost.network_cost(IO.read(path), "fvcore")
    assert (cost.params, cost.mult_adds) == fvcore_counts(model, (3, 32, 32))


def test_onnx_exported_in_eval_is_priced_as_deployed(tmp_path):
    """An eval() export folds BatchNorm into a bias per conv output channel: the file's params are the
    module's deployed params, its Mult-Adds the conv and linear multiply-accumulates."""
    pytest.importorskip("onnx")
    from mnetcost.calculator.importers import onnx as IO

    model = randomised(ResNetLike())
    path = tmp_path / "resnet.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False)
    from_file = mnetcost.network_cost(IO.read(path), "deploy")
    from_module = mnetcost.network_cost(mnetcost.from_torch(model, (3, 32, 32)), "deploy")
    assert (from_file.params, from_file.mult_adds) == (from_module.params, from_module.mult_adds)
    result = CliRunner().invoke(main, ["table", "--variant", str(path), "--convention", "deploy", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mult_adds"] == from_module.mult_adds
    tflm = CliRunner().invoke(main, ["table", "--variant", str(path), "--runtime", "tflm"])
    assert tflm.exit_code == 2 and "runs .tflite files" in tflm.output


def test_an_operator_it_cannot_price_is_named():
    class Upsampling(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.up = nn.Upsample(scale_factor=2)

        def forward(self, x):
            return self.up(self.conv(x))

    with pytest.raises(ConfigError, match=r"Upsample \(up\): mnetcost cannot price it yet"):
        mnetcost.from_torch(Upsampling(), (3, 8, 8))


def test_an_onnx_operator_it_cannot_price_is_named(tmp_path):
    pytest.importorskip("onnx")

    class Upsampling(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.up = nn.Upsample(scale_factor=2)

        def forward(self, x):
            return self.up(self.conv(x))

    path = tmp_path / "up.onnx"
    torch.onnx.export(Upsampling().eval(), (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False)
    result = CliRunner().invoke(main, ["table", "--variant", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Resize (" in lines[0] and "mnetcost cannot price it yet" in lines[0]


@pytest.mark.parametrize("variant, alpha, delta", [("base", 0.25, 2), ("mp3", 0.5, 1), ("mobilenet_v2", 0.5, 1),
                                                   ("mobilenet_v3_small", 1.0, 1)])
def test_from_torch_of_mnetcosts_own_models_prices_as_their_specs(variant, alpha, delta):
    """The modules mnetcost builds (explicit pads, a depthwise conv called as a function, squeeze-excite,
    residual adds), read back from their traced graph, cost what their specs cost under every convention."""
    model = mnetcost.build_model(variant, alpha=alpha, delta=delta)
    spec = mnetcost.resolve(variant, alpha, delta)
    imported = mnetcost.from_torch(model, (3, *spec.resolution))
    assert model.training  # the module is left as it was given
    for convention in ("paper", "fvcore", "deploy", "elementwise"):
        got, want = mnetcost.network_cost(imported, convention), mnetcost.network_cost(spec, convention)
        assert (got.params, got.mult_adds) == (want.params, want.mult_adds), convention

"""A reference written elsewhere: Keras applications' ``MobileNet``, ``MobileNetV2``,
``MobileNetV3Small`` and ``MobileNetV3Large`` built at a resolved network's configuration and
compared with it, layer by layer (``mnetcost crosscheck --reference keras``).

The Keras side is read from the Keras model alone: every ``Conv2D``, ``DepthwiseConv2D`` and
``Dense`` layer's output shape and its multiply-accumulates, counted here from the layer's own
kernel size, groups, depth multiplier and input and output shapes (k_h * k_w * C_in / groups *
C_out * H_out * W_out; a depthwise conv k_h * k_w * C_in * depth_multiplier * H_out * W_out; a
dense layer C_in * units), every ``Add`` layer (a residual), and ``count_params()`` (which
counts BatchNorm with its four numbers per channel: mnetcost's ``paper`` convention). The
mnetcost side is the resolved network's conv, depthwise, pointwise and classifier layers and its
``add`` layers. Nothing of one side is derived from the other.

Keras and TensorFlow are imported inside these functions only (the ``[tflite]`` extra).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from itertools import zip_longest

from mnetcost.errors import ConfigError

# the built-in variant -> the Keras application that builds the same network
APPLICATIONS = {"base": "MobileNet", "mobilenet_v2": "MobileNetV2", "mobilenet_v3_small": "MobileNetV3Small",
                "mobilenet_v3_large": "MobileNetV3Large"}
WEIGHTED = ("conv", "dw", "pw", "fc")  # the resolved kinds with multiply-accumulates


def application(network) -> str:
    """The Keras application that builds ``network``'s architecture, or a ConfigError saying why
    there is none (a variant Keras does not ship, the paper's pooled forms, delta on V2/V3)."""
    spec = network.spec
    name = spec.name if spec.name in APPLICATIONS else spec.extends
    if name not in APPLICATIONS or spec.downsample != "stride" or spec.in_channels != 3:
        raise ConfigError(f"no Keras application builds {network.variant}: --reference keras checks "
                          f"{', '.join(APPLICATIONS)} (and specs that extend them with the same layers)")
    if network.delta != 1 and name != "base":
        raise ConfigError(f"Keras's {APPLICATIONS[name]} has no depth multiplier: --reference keras needs "
                          f"delta 1 for {network.variant}")
    return APPLICATIONS[name]


@dataclass(frozen=True)
class KerasLayer:
    name: str
    kind: str  # conv, dw, fc or add
    output_shape: tuple[int, int, int]  # (height, width, channels); a dense layer's is (1, 1, units)
    macs: int


@dataclass(frozen=True)
class KerasBuild:
    application: str
    version: str
    params: int  # count_params()
    layers: tuple[KerasLayer, ...]

    @property
    def weighted(self) -> tuple[KerasLayer, ...]:
        return tuple(layer for layer in self.layers if layer.kind != "add")

    @property
    def adds(self) -> int:
        return sum(layer.kind == "add" for layer in self.layers)


def _shape(tensor_shape) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in tuple(tensor_shape)[1:])
    return (1, 1, dims[0]) if len(dims) == 1 else dims  # a Dense output is (batch, units)


def read_model(model) -> tuple[KerasLayer, ...]:
    """The weighted layers and residual adds of a Keras model, in the model's order, with the
    multiply-accumulates each weighted layer does (from its own configuration and shapes)."""
    from keras import layers as L

    found = []
    for layer in model.layers:
        if isinstance(layer, L.Add):
            found.append(KerasLayer(layer.name, "add", _shape(layer.output.shape), 0))
            continue
        if not isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.Dense)):
            continue
        out = _shape(layer.output.shape)
        in_c = int(layer.input.shape[-1])
        if isinstance(layer, L.DepthwiseConv2D):  # (a subclass of neither Conv2D nor Dense in Keras 3)
            kh, kw = layer.kernel_size
            macs, kind = kh * kw * in_c * layer.depth_multiplier * out[0] * out[1], "dw"
        elif isinstance(layer, L.Conv2D):
            kh, kw = layer.kernel_size
            macs, kind = kh * kw * (in_c // layer.groups) * out[2] * out[0] * out[1], "conv"
        else:
            macs, kind = in_c * layer.units, "fc"
        found.append(KerasLayer(layer.name, kind, out, macs))
    return tuple(found)


@lru_cache(maxsize=256)
def build(application_name: str, alpha: float, delta: int, classes: int, height: int, width: int) -> KerasBuild:
    """The Keras application at this configuration (weights=None, the classifier on top, V3 without
    its preprocessing layer), read into a :class:`KerasBuild`. Variables are created without their
    initial values (a StatelessScope): nothing here needs the weights, and building is twice as fast.
    Each configuration is built once per process."""
    from mnetcost.deploy.tflite import quiet_tensorflow, silenced

    quiet_tensorflow()
    with silenced():
        import keras
        from keras import applications

        constructor = getattr(applications, application_name)
        options = {"input_shape": (height, width, 3), "alpha": alpha, "weights": None, "classes": classes,
                   "include_top": True}
        if application_name == "MobileNet":
            options["depth_multiplier"] = delta
        if application_name.startswith("MobileNetV3"):
            options["include_preprocessing"] = False
        with keras.StatelessScope():
            model = constructor(**options)
        return KerasBuild(application_name, keras.__version__, int(model.count_params()), read_model(model))


@dataclass(frozen=True)
class LayerCheck:
    name: str  # mnetcost's layer ("" where Keras has one more)
    keras_name: str
    output_shape: tuple | None
    keras_output_shape: tuple | None
    mult_adds: int | None
    keras_mult_adds: int | None

    @property
    def agree(self) -> bool:
        return (self.output_shape == self.keras_output_shape and self.mult_adds == self.keras_mult_adds
                and self.output_shape is not None)

    def as_dict(self) -> dict:
        return {"name": self.name, "keras_name": self.keras_name,
                "output_shape": list(self.output_shape) if self.output_shape else None,
                "keras_output_shape": list(self.keras_output_shape) if self.keras_output_shape else None,
                "mult_adds": self.mult_adds, "keras_mult_adds": self.keras_mult_adds, "agree": self.agree}


@dataclass(frozen=True)
class KerasCheck:
    network: object
    build: KerasBuild
    layers: tuple[LayerCheck, ...]
    params: int  # mnetcost, paper convention
    mult_adds: int  # mnetcost, paper convention (multiply-accumulates)
    adds: int  # mnetcost's residual adds
    add_names: tuple[str, ...] = field(default=())

    @property
    def keras_mult_adds(self) -> int:
        return sum(layer.macs for layer in self.build.weighted)

    @property
    def disagreeing(self) -> tuple[LayerCheck, ...]:
        return tuple(layer for layer in self.layers if not layer.agree)

    @property
    def totals(self) -> list[dict]:
        """The whole-network figures side by side."""
        return [
            {"quantity": "params (paper = count_params)", "mnetcost": self.params, "keras": self.build.params},
            {"quantity": "Mult-Adds", "mnetcost": self.mult_adds, "keras": self.keras_mult_adds},
            {"quantity": "weighted layers", "mnetcost": sum(1 for l in self.layers if l.name),
             "keras": len(self.build.weighted)},
            {"quantity": "residual adds", "mnetcost": self.adds, "keras": self.build.adds},
        ]

    @property
    def agree(self) -> bool:
        return not self.disagreeing and all(row["mnetcost"] == row["keras"] for row in self.totals)

    def as_dict(self) -> dict:
        net = self.network
        return {"variant": net.variant, "alpha": net.alpha, "delta": net.delta, "classes": net.classes,
                "resolution": list(net.resolution), "rounding": net.rounding, "reference": "keras",
                "keras_application": self.build.application, "keras": self.build.version,
                "agree": self.agree, "totals": [dict(row, agree=row["mnetcost"] == row["keras"])
                                                for row in self.totals],
                "layers": [layer.as_dict() for layer in self.layers]}


def compare(network, keras_build: KerasBuild) -> KerasCheck:
    """mnetcost's weighted layers against Keras's, in order (pairs by position: a layer one side
    has and the other lacks shows as a row with one side empty and everything after it shifted),
    and the totals: params, Mult-Adds, the number of weighted layers and of residual adds."""
    from mnetcost.calculator.cost import network_cost

    cost = network_cost(network, "paper")
    ours = [row for row in cost.layers if row.layer.kind in WEIGHTED]
    rows = []
    for mine, theirs in zip_longest(ours, keras_build.weighted):
        rows.append(LayerCheck(
            name=mine.layer.name if mine else "", keras_name=theirs.name if theirs else "",
            output_shape=mine.layer.output_shape if mine else None,
            keras_output_shape=theirs.output_shape if theirs else None,
            mult_adds=mine.mult_adds if mine else None, keras_mult_adds=theirs.macs if theirs else None))
    adds = tuple(layer.name for layer in network.layers if layer.kind == "add")
    return KerasCheck(network=network, build=keras_build, layers=tuple(rows), params=cost.params,
                      mult_adds=cost.mult_adds, adds=len(adds), add_names=adds)


def crosscheck_keras(network) -> KerasCheck:
    """Build the Keras application of ``network``'s configuration and compare (see the module)."""
    name = application(network)
    height, width = network.resolution
    return compare(network, build(name, float(network.alpha), int(network.delta), int(network.classes),
                                  int(height), int(width)))

"""``mnetcost crosscheck``: the engine's per-layer figures against fvcore on the real model, or (--runtime tflm)
the predicted TensorFlow Lite Micro arena and .tflite bytes against the real interpreter and file."""
from __future__ import annotations

import click

from mnetcost.calculator.targets import TFLM_BUILD_NAMES
from mnetcost.cli.options import (config_options, convention_option, dtype_option, fail, format_option,
                              require_torch, rounding_option, variant_option)

_CONFIG_PARAMS = ("variant", "alpha", "delta", "classes", "resolution", "rounding")


def _yes(agree: bool) -> str:
    return "yes" if agree else "NO"


def _ops_note(unsupported: dict) -> str:
    from mnetcost.nn.crosscheck import ZERO_COST_OPS

    if not unsupported:
        return "fvcore counted every op it traced."
    parts = [f"{op} ×{n} ({ZERO_COST_OPS.get(op, 'UNEXPECTED')})" for op, n in unsupported.items()]
    note = "fvcore had no handle for these ops and counted them as 0: " + ", ".join(parts)
    if any(op not in ZERO_COST_OPS for op in unsupported):
        note += ". UNEXPECTED ops are not pooling, padding or normalisation: they may cost what neither side counts"
    return note


def _ops(check_or_convention) -> tuple[int, str, str]:
    """(operations per multiply-accumulate, unit, column key): FLOPs under the flops convention."""
    convention = getattr(check_or_convention, "convention", check_or_convention)
    key = "flops" if convention.ops_per_mac == 2 else "mult_adds"
    return convention.ops_per_mac, convention.unit, key


def _one_views(check, fmt: str):
    from mnetcost.cli.render import Column, View

    scale, unit, key = _ops(check)
    columns = [
        Column("name", "layer", wrap=False), Column("type", "type", wrap=False),
        Column("params", "params", True), Column("fvcore_params", "fvcore", True),
        Column(key, unit, True), Column(f"fvcore_{key}", "fvcore", True),
        Column("agree", "agree", format=_yes),
    ]
    rows = [{"name": layer.name, "type": layer.kind, "params": layer.params, "fvcore_params": layer.fvcore_params,
             key: layer.mult_adds * scale, f"fvcore_{key}": layer.fvcore_mult_adds * scale,
             "agree": layer.agree} for layer in check.layers]
    footer = {"name": "total", "type": "", "params": check.params, "fvcore_params": check.fvcore_params,
              key: check.mult_adds * scale, f"fvcore_{key}": check.fvcore_mult_adds * scale,
              "agree": _yes(check.totals_agree)}
    net = check.network
    height, width = net.resolution
    conv = check.convention
    params_how = {4: "parameter_count + BatchNorm running mean/var buffers",
                  2: "parameter_count (trainable)",
                  1: "parameter_count of a BatchNorm-folded copy",
                  0: "parameter_count without BatchNorm γ/β"}[conv.bn_params]
    flops_how = ("fvcore's default op handles" if conv.name == "fvcore"
                 else "op handles for conv and linear only")
    disagree = check.disagreeing
    notes = [
        f"convention {conv.name}: {conv.description}",
        f"fvcore side: FlopCountAnalysis ({flops_how}), {params_how}; model in eval(), input 1×"
        f"{net.spec.in_channels}×{height}×{width}",
        _ops_note(check.unsupported_ops),
        (f"all {len(check.layers)} layers agree" if check.totals_agree and not disagree else
         f"DISAGREE: {len(disagree)} of {len(check.layers)} layers ({', '.join(layer.name for layer in disagree)})"
         + ("" if check.totals_agree else "; totals differ")),
    ]
    has_fmp = any(layer.kind == "fmp" for layer in net.layers)
    title = (f"crosscheck: {net.variant}, α={net.alpha:g}, δ={net.delta}, {net.classes} classes, "
             f"{height}×{width}" + (f", FMP {check.fmp_mode}" if has_fmp else ""))
    views = [View(title=title, columns=columns, rows=rows, notes=notes, footer=footer)]
    if check.memory is not None:
        views.append(_memory_view(check.memory, title))
    return views


def _one_csv_view(views):
    """For machines, one table: each layer's counts beside fvcore's and its bytes beside the
    model's tensors (the two tables people see, joined on the layer)."""
    from mnetcost.cli.render import Column, View

    if len(views) == 1:
        return views[0]
    counts, memory = views
    by_name = {row["name"]: row for row in memory.rows}
    columns = counts.columns + [c for c in memory.columns if c.key not in ("name", "agree")]
    columns.append(Column("memory_agree", "memory agree"))
    rows = [{**by_name[row["name"]], **row, "memory_agree": by_name[row["name"]]["agree"]} for row in counts.rows]
    return View(title="", columns=columns, rows=rows)


def _memory_view(memory, title: str):
    """Per layer: the engine's activation, weight and training bytes beside the model's own."""
    from mnetcost.calculator.memory import format_bytes
    from mnetcost.cli.render import Column, View

    dtype = memory.dtype
    columns = [
        Column("name", "layer", wrap=False),
        Column("input_bytes", "in B", True, group="in", csv=f"input_bytes_{dtype}"),
        Column("model_input_bytes", "model", True, group="in", csv=f"model_input_bytes_{dtype}"),
        Column("output_bytes", "out B", True, group="out", csv=f"output_bytes_{dtype}"),
        Column("model_output_bytes", "model", True, group="out", csv=f"model_output_bytes_{dtype}"),
        Column("weight_bytes", "weight B", True, group="w", csv=f"weight_bytes_{dtype}"),
        Column("folded_weight_bytes", "folded", True, group="w", csv=f"folded_weight_bytes_{dtype}"),
        Column("training_bytes", "train B/img", True, group="t", csv="training_bytes_per_image_fp32"),
        Column("measured_training_bytes", "autograd", True, group="t",
               csv="measured_training_bytes_per_image_fp32"),
        Column("agree", "agree", format=_yes),
    ]
    rows = [layer.as_dict() for layer in memory.layers]
    footer = {"name": "total", "input_bytes": memory.peak_activation_bytes,
              "model_input_bytes": memory.measured_peak_bytes, "output_bytes": None, "model_output_bytes": None,
              "weight_bytes": memory.weight_bytes, "folded_weight_bytes": memory.folded_weight_bytes,
              "training_bytes": memory.training_activation_bytes_per_image,
              "measured_training_bytes": memory.measured_training_bytes_per_image, "agree": _yes(memory.totals_agree)}
    bad = memory.disagreeing
    notes = [
        f"memory at {memory.dtype}: in/out B = the layer's input/output activation bytes (engine) and the real "
        "tensors' elements x bytes per element (forward hooks, batch 1, eval); total row: the peak of the tensors "
        "alive at one layer, each from the layer that writes it to the last that reads it (engine: the resolved "
        "layers' inputs; model: the tensors its modules read in the forward pass) "
        f"({memory.peak_layer}: {format_bytes(memory.peak_activation_bytes)}; model: {memory.measured_peak_layer})",
        f"weight B: deployed weights (BatchNorm folded) against a BatchNorm-folded copy of the model: "
        f"{memory.deploy_params:,} vs {memory.folded_params:,} params; the folded copy's output differs from the "
        f"model's by {memory.fold_max_diff:.1e} (relative)",
        "train B/img: what autograd keeps per image for the backward pass (fp32) against the distinct tensors "
        "torch.autograd.graph.saved_tensors_hooks sees in train() at batches 2 and 4 (the slope); "
        f"{memory.per_batch_bytes:,} B more per batch do not grow with it (BatchNorm batch statistics, FMP index "
        "tables)",
        (f"memory: all {len(memory.layers)} layers agree" if memory.agree else
         f"memory DISAGREES: {len(bad)} of {len(memory.layers)} layers ({', '.join(layer.name for layer in bad)})"
         + ("" if memory.totals_agree else "; totals differ")),
    ]
    return View(title=f"{title}: memory", columns=columns, rows=rows, notes=notes, footer=footer)


def _all_views(results, convention, fmt: str):
    from mnetcost.cli.render import Column, View

    scale, unit, key = _ops(convention)
    wide = fmt != "table"  # the terminal table leaves out what does not fit 80 columns
    columns = [
        *([Column("source", "source")] if wide else []),
        Column("variant", "variant", wrap=False), Column("alpha", "α", True, format="{:g}".format),
        Column("delta", "δ", True), Column("classes", "classes", True), Column("resolution", "input", True),
        Column("params", "params", True), *([Column("fvcore_params", "fvcore params", True)] if wide else []),
        Column(key, unit, True), *([Column(f"fvcore_{key}", f"fvcore {unit}", True)] if wide else []),
        Column("layers_text", "layers", True, csv=None), Column("layers_agree", "layers_agree", show=False),
        Column("layers", "layers", show=False), Column("memory", "memory", format=_yes, csv="memory_agree"),
        Column("agree", "agree", format=_yes),
    ]
    rows = []
    for config, check in results:
        agreeing = len(check.layers) - len(check.disagreeing)
        rows.append({"source": config.source, "variant": config.variant, "alpha": config.alpha,
                     "delta": config.delta, "classes": config.classes, "resolution": config.resolution,
                     "params": check.params, "fvcore_params": check.fvcore_params,
                     key: check.mult_adds * scale, f"fvcore_{key}": check.fvcore_mult_adds * scale,
                     "layers_text": f"{agreeing}/{len(check.layers)}", "layers_agree": agreeing,
                     "layers": len(check.layers), "memory": check.memory_agree, "agree": check.agree})
    ops = {}
    for _, check in results:
        for op, n in check.unsupported_ops.items():
            ops[op] = ops.get(op, 0) + n
    good = sum(check.agree for _, check in results)
    notes = [f"convention {convention.name}: {convention.description}", _ops_note(ops),
             *([] if wide else ["params and Mult-Adds: the engine's; 'layers': layers whose params and "
                                "Mult-Adds equal fvcore's; 'memory': every layer's activation, weight and "
                                "training bytes equal the model's tensors; 'agree': all of it "
                                "(--format csv or json adds fvcore's totals)"]),
             f"{good} of {len(results)} configurations agree on every layer"]
    return [View(title=f"crosscheck --all ({len(results)} configurations)", columns=columns, rows=rows,
                 notes=notes)]


@click.command("crosscheck")
@variant_option
@config_options(lists=False, spec_defaults=True)
@convention_option
@rounding_option
@click.option("--fmp-mode", type=click.Choice(("tf", "torch")), default="tf", show_default=True,
              help="Fractional max pooling module: tf (TensorFlow's algorithm) or torch (the built-in).")
@click.option("--all", "run_all", is_flag=True,
              help="Every configuration of Tables 4-6 (both datasets) and a few unprinted ones, one row each.")
@dtype_option(target=False)
@click.option("--runtime", type=click.Choice(("torch", "tflm")), default="torch", show_default=True,
              help="torch: parameters, Mult-Adds and memory against fvcore and the PyTorch model; tflm: the "
                   "predicted TensorFlow Lite Micro arena (head, tail by category, smallest arena) and .tflite "
                   "bytes against the real interpreter and file (needs the [tflite] extra).")
@click.option("--reference", type=click.Choice(("model", "keras")), default="model", show_default=True,
              help="model: the PyTorch model built from the same resolved layers (fvcore, or the interpreter with "
                   "--runtime tflm); keras: Keras applications' own MobileNet/MobileNetV2/MobileNetV3 built at the "
                   "same configuration, compared layer by layer (shapes, Mult-Adds, params, residual adds; "
                   "--rounding defaults to keras; needs the [tflite] extra).")
@click.option("--tflm-build", type=click.Choice(TFLM_BUILD_NAMES), default=None,
              help="With --runtime tflm: the build checked. Only host64: the interpreter here is tflite-micro's "
                   "Python package, a 64-bit host build (the arm32 figures of table/sweep are checked against a "
                   "32-bit build by tools/tflm_build; see docs/memory.md).")
@format_option
@click.pass_context
def command(ctx, variant, alpha, delta, classes, resolution, convention, rounding, fmp_mode, run_all, dtype, runtime,
            reference, tflm_build, fmt):
    """Check the engine's parameters, Mult-Adds and memory against the real model, layer by layer.

    Builds the PyTorch model from the same resolved layers, runs fvcore's FlopCountAnalysis and
    parameter_count on it (eval mode) and prints both figures per layer; then compares every
    layer's activation shapes and bytes at --dtype with the model's tensors (forward hooks), the
    deployed weight bytes and params with a BatchNorm-folded copy, and the training activation
    bytes per image with what autograd saves (saved_tensors_hooks). Exit status 1 if any
    figure disagrees.

    With --runtime tflm: exports the configuration to an int8 .tflite file (mnetcost export
    --format tflite's path, on a model whose BatchNorm statistics come from standard-normal
    images: the arena and the file do not depend on the weights), loads it in TensorFlow Lite
    Micro's interpreter in child processes, and compares the calculator's predictions with the
    file's bytes (weights, quantization, names, metadata, structure) and the interpreter's
    allocation records (head, tail by category, total, the smallest arena_size it accepts).

    With --reference keras: builds keras.applications' MobileNet (base), MobileNetV2,
    MobileNetV3Small or MobileNetV3Large (weights=None) at the same alpha, delta (MobileNet only),
    classes and input size, and compares every conv, depthwise and classifier layer's output shape
    and Mult-Adds (counted from the Keras layers' own kernels and shapes), count_params() with the
    paper convention's params, and the number of residual adds. The widths follow --rounding
    (default keras: Keras's own rule); exit status 1 if anything disagrees.
    """
    from click.core import ParameterSource

    if tflm_build is not None and runtime != "tflm":
        fail(f"--tflm-build {tflm_build} applies to --runtime tflm")
    if tflm_build == "arm32":
        fail("crosscheck --runtime tflm runs tflite-micro's Python interpreter, a 64-bit host build: it checks "
             "--tflm-build host64 only (the arm32 figures are measured by a 32-bit build: tools/tflm_build)")
    from mnetcost.calculator.importers import is_model_file

    if is_model_file(variant) and (runtime != "tflm" or reference == "keras"):
        fail(f"{variant} is a model file: crosscheck checks it against TensorFlow Lite Micro's interpreter "
             "(--runtime tflm); fvcore and Keras check mnetcost's own architectures")
    if reference == "keras":
        return _keras(ctx, variant, alpha, delta, classes, resolution, rounding, fmt)
    if runtime == "tflm":
        return _tflm(ctx, variant, alpha, delta, classes, resolution, rounding, fmp_mode, run_all, dtype, fmt)

    if run_all:
        given = [f"--{name}" for name in _CONFIG_PARAMS
                 if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
        if given:
            fail(f"--all checks a fixed grid of configurations; drop {', '.join(given)}")
    require_torch("crosscheck", fvcore=True)
    # train's thread policy: a torch thread on a core another process keeps busy stalls every OpenMP
    # barrier of the forward passes and fvcore's traces (mnetcost/nn/threads.py); the counts do not depend on it
    from mnetcost.nn import threads as thread_policy

    thread_policy.apply(thread_policy.choose_threads())
    from mnetcost.calculator.cost import get_convention
    from mnetcost.nn.crosscheck import all_configurations, crosscheck
    from mnetcost.cli.render import emit
    from mnetcost.calculator.resolver import resolve

    conv = get_convention(convention)
    if run_all:
        results = []
        for config in all_configurations():
            network = resolve(config.variant, config.alpha, config.delta, config.classes, config.resolution)
            results.append((config, crosscheck(network, conv, fmp_mode=fmp_mode, dtype=dtype or "fp32")))
        obj = [dict(check.summary(), source=config.source) for config, check in results]
        emit(fmt, obj, _all_views(results, conv, fmt))
        bad = [check for _, check in results if not check.agree]
        if bad:
            names = "; ".join(f"{c.network.variant} α={c.network.alpha:g} δ={c.network.delta} "
                              f"classes={c.network.classes}" for c in bad)
            raise click.ClickException(f"crosscheck failed: {len(bad)} of {len(results)} configurations "
                                       f"disagree with fvcore or the model's tensors ({names})")
        return
    network = resolve(variant, alpha, delta, classes, resolution, rounding=rounding)
    check = crosscheck(network, conv, fmp_mode=fmp_mode, dtype=dtype or "fp32")
    views = _one_views(check, fmt)
    emit(fmt, check.as_dict(), views, csv_view=_one_csv_view(views))
    if not check.agree:
        problems = []
        if check.disagreeing or not check.totals_agree:
            detail = ", ".join(f"{layer.name} (params {layer.params:,} vs {layer.fvcore_params:,}, "
                               f"{conv.unit} {layer.mult_adds:,} vs {layer.fvcore_mult_adds:,})"
                               for layer in check.disagreeing)
            problems.append(f"{len(check.disagreeing)} of {len(check.layers)} layers disagree with fvcore"
                            + (f": {detail}" if detail else "") + ("" if check.totals_agree else "; totals differ"))
        if not check.memory_agree:
            memory = check.memory
            detail = ", ".join(layer.name for layer in memory.disagreeing)
            problems.append(f"memory of {len(memory.disagreeing)} of {len(memory.layers)} layers disagrees with the "
                            f"model's tensors" + (f": {detail}" if detail else "")
                            + ("" if memory.totals_agree else "; memory totals differ"))
        raise click.ClickException("crosscheck failed: " + "; ".join(problems))


def _tflm(ctx, variant, alpha, delta, classes, resolution, rounding, fmp_mode, run_all, dtype, fmt):
    import tempfile

    from mnetcost.calculator.resolver import resolve
    from mnetcost.cli.options import is_given

    if run_all:
        fail("--runtime tflm checks one configuration (an export and several interpreter runs each); drop --all")
    from mnetcost.calculator.importers import is_model_file

    if is_model_file(variant):
        return _tflm_file(ctx, variant, dtype, fmp_mode, fmt)
    if dtype not in (None, "int8"):
        fail(f"--runtime tflm runs the int8 file; --dtype {dtype} does not apply")
    if fmp_mode != "tf":
        fail("--runtime tflm exports fractional max pooling's fixed draw (fmp_mode tf); drop --fmp-mode")
    for name in ("convention",):
        if is_given(ctx, name):
            fail(f"--{name} does not apply to --runtime tflm")
    network = resolve(variant, alpha, delta, classes, resolution, rounding=rounding)
    from mnetcost.deploy import tflite as TL

    TL.require("crosscheck --runtime tflm")
    with tempfile.TemporaryDirectory(prefix="mnetcost-tflm-") as folder:
        result = TL.crosscheck_tflm(network, folder)
    from mnetcost.cli.render import Column, View, emit

    rows = [{**row, "agree": _yes(row["agree"])} for row in result["rows"]]
    net = result["network"]
    title = (f"crosscheck --runtime tflm: {network.variant}, α={network.alpha:g}, δ={network.delta}, "
             f"{network.classes} classes, {'×'.join(str(v) for v in network.resolution)}")
    bad = [row["quantity"].strip() for row in result["rows"] if not row["agree"]]
    notes = [f"model: {result['tflm_version']}; file: {result['converter']}, tensorflow {result['tensorflow']}, "
             f"keras {result['keras']}",
             "operators: " + ", ".join(f"{op} {n}" for op, n in result["operators"].items())
             + f"; {result['tensors']} tensors",
             "measured: the file's bytes read back with the FlatBuffers object API; the interpreter's "
             "RecordingMicroAllocator records (print_allocations) after one invoke",
             "all figures agree to the byte" if not bad else f"DISAGREE: {', '.join(bad)}"]
    view = View(title=title, columns=[Column("quantity", "quantity", wrap=False),
                                      Column("predicted", "predicted B", True), Column("measured", "measured B", True),
                                      Column("agree", "agree"), Column("note", "note")],
                rows=rows, notes=notes)
    obj = {key: value for key, value in result.items() if key != "printed"}
    obj["network"] = net
    emit(fmt, obj, [view])
    if bad:
        raise click.ClickException(f"crosscheck --runtime tflm failed: {', '.join(bad)} differ from the interpreter")


def _count(value) -> str:
    return "-" if value is None else f"{value:,}"


def _keras(ctx, variant, alpha, delta, classes, resolution, rounding, fmt):
    """``crosscheck --reference keras``: the resolved network against Keras applications' build."""
    from mnetcost.cli.options import is_given

    for name in ("run_all", "convention", "fmp_mode", "dtype", "runtime"):
        if is_given(ctx, name):
            flag = {"run_all": "all", "fmp_mode": "fmp-mode"}.get(name, name)
            fail(f"--{flag} does not apply to --reference keras (it compares shapes, Mult-Adds, Keras's "
                 "count_params as the paper convention and the residual adds)")
    from mnetcost.calculator.resolver import resolve
    from mnetcost.deploy import keras_reference as KR

    network = resolve(variant, alpha, delta, classes, resolution, rounding=rounding or "keras")
    KR.application(network)  # a variant Keras does not build fails before TensorFlow is imported
    from mnetcost.deploy import tflite as TL

    TL.quiet_tensorflow()
    with TL.silenced():
        from mnetcost.cli.options import require_extra

        require_extra("crosscheck --reference keras", ("keras", "tensorflow"), TL.EXTRA)
    check = KR.crosscheck_keras(network)
    from mnetcost.cli.render import Column, View, emit

    def shape(value):
        return "" if value is None else "×".join(str(v) for v in value)

    def number(value):
        return "" if value is None else value

    rows = [{"name": layer.name, "keras_name": layer.keras_name, "output_shape": shape(layer.output_shape),
             "keras_output_shape": shape(layer.keras_output_shape), "mult_adds": number(layer.mult_adds),
             "keras_mult_adds": number(layer.keras_mult_adds), "agree": _yes(layer.agree)} for layer in check.layers]
    height, width = network.resolution
    title = (f"crosscheck --reference keras: {network.variant} against keras.applications."
             f"{check.build.application}, α={network.alpha:g}, δ={network.delta}, {network.classes} classes, "
             f"{height}×{width}, widths: rounding {network.rounding}")
    layer_view = View(title=title, columns=[
        Column("name", "layer", wrap=False), Column("keras_name", "keras layer", wrap=False),
        Column("output_shape", "output"), Column("keras_output_shape", "keras"),
        Column("mult_adds", "Mult-Adds", True), Column("keras_mult_adds", "keras", True),
        Column("agree", "agree")], rows=rows)
    totals = [{**row, "agree": _yes(row["mnetcost"] == row["keras"])} for row in check.totals]
    bad_layers = check.disagreeing
    notes = [f"keras {check.build.version}: keras.applications.{check.build.application}(weights=None, "
             f"include_top=True{', include_preprocessing=False' if 'V3' in check.build.application else ''}); "
             "its Mult-Adds counted here from each Conv2D/DepthwiseConv2D/Dense layer's kernel and shapes; params: "
             "count_params() (BatchNorm with its moving statistics) against mnetcost's paper convention",
             ("every layer and total agrees" if check.agree else
              "DISAGREE: " + ", ".join([f"{len(bad_layers)} of {len(check.layers)} layers"] * bool(bad_layers)
                                       + [row["quantity"] for row in check.totals
                                          if row["mnetcost"] != row["keras"]]))]
    total_view = View(title="totals", columns=[Column("quantity", "quantity", wrap=False),
                                               Column("mnetcost", "mnetcost", True), Column("keras", "keras", True),
                                               Column("agree", "agree")], rows=totals, notes=notes)
    emit(fmt, check.as_dict(), [layer_view, total_view], csv_view=layer_view)
    if not check.agree:
        first = bad_layers[0] if bad_layers else None
        detail = (f"; first at {first.name or '(none)'} / {first.keras_name or '(none)'}: "
                  f"{shape(first.output_shape) or '-'} vs {shape(first.keras_output_shape) or '-'}, "
                  f"{_count(first.mult_adds)} vs {_count(first.keras_mult_adds)} Mult-Adds" if first else "")
        raise click.ClickException(
            f"crosscheck --reference keras failed: {network.variant} at rounding {network.rounding} differs from "
            f"Keras's {check.build.application} ("
            + ", ".join([f"{len(bad_layers)} layers"] * bool(bad_layers)
                        + [row["quantity"] for row in check.totals if row["mnetcost"] != row["keras"]]) + ")"
            + detail)


def _tflm_file(ctx, variant, dtype, fmp_mode, fmt):
    """``crosscheck --runtime tflm --variant FILE.tflite``: the arena predicted for the file as it is against
    TensorFlow Lite Micro's interpreter running it."""
    from mnetcost.cli.commands.model_file import refuse_spec_options
    from mnetcost.cli.options import is_given, require_extra

    refuse_spec_options(ctx, variant)
    if not str(variant).lower().endswith(".tflite"):
        fail(f"crosscheck --runtime tflm runs .tflite files; {variant} is not one")
    for name, given in (("--dtype", dtype is not None), ("--fmp-mode", fmp_mode != "tf"),
                        ("--convention", is_given(ctx, "convention"))):
        if given:
            fail(f"{name} does not apply to a model file checked against TensorFlow Lite Micro")
    require_extra("crosscheck --runtime tflm", ("tflite_micro",), "tflite")
    from mnetcost.cli.commands.model_file import read_model
    from mnetcost.cli.render import Column, View, emit
    from mnetcost.deploy import tflite as TL

    read_model(variant, fmt)  # an operator it cannot price: one line, before the interpreter runs
    result = TL.crosscheck_file(variant)
    rows = [{**row, "agree": _yes(row["agree"])} for row in result["rows"]]
    bad = [row["quantity"].strip() for row in result["rows"] if not row["agree"]]
    notes = [f"model: {result['tflm_version']} (--tflm-build {result['tflm_build']})",
             "operators: " + ", ".join(f"{op} {n}" for op, n in result["operators"].items())
             + f"; {result['tensors']} tensors",
             "measured: the interpreter's RecordingMicroAllocator records (print_allocations) after one invoke",
             "all figures agree to the byte" if not bad else f"DISAGREE: {', '.join(bad)}"]
    view = View(title=f"crosscheck --runtime tflm: {variant} ({result['file_bytes']:,} B)",
                columns=[Column("quantity", "quantity", wrap=False), Column("predicted", "predicted B", True),
                         Column("measured", "measured B", True), Column("agree", "agree"), Column("note", "note")],
                rows=rows, notes=notes)
    emit(fmt, {key: value for key, value in result.items() if key != "printed"}, [view])
    if bad:
        raise click.ClickException(f"crosscheck --runtime tflm failed: {', '.join(bad)} differ from the interpreter")

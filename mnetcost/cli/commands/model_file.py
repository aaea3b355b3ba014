"""``--variant FILE.tflite`` / ``FILE.onnx``: a model file priced and judged like a spec (``table``), and the
refusals of the options a file has no use for."""
from __future__ import annotations

import os

import click

from mnetcost.cli.options import fail

# options that shape a spec and that a model file fixes itself: (parameter name, option)
SPEC_ONLY = (("alpha", "--alpha"), ("delta", "--delta"), ("classes", "--classes"), ("resolution", "--resolution"),
             ("rounding", "--rounding"))


def refuse_spec_options(ctx: click.Context, variant: str, names=SPEC_ONLY) -> None:
    """One line (exit 2) when a spec's option is given with a model file: the file fixes widths and shapes."""
    from mnetcost.cli.options import is_given

    given = [option for name, option in names if name in ctx.params and is_given(ctx, name)]
    if given:
        fail(f"{' and '.join(given)} cannot apply to {variant}: a model file has no alpha/delta (its widths, "
             "classes and input size are the file's own); drop " + ("them" if len(given) > 1 else "it"))


def read_model(variant: str, fmt: str):
    """The file read; an operator that cannot be priced or run ends the command with one line (exit 2), after
    listing the operators on stdout for ``--format json``."""
    from mnetcost.calculator.importers import tflite as IT

    found = IT.read(variant)
    if found.problems:
        if fmt == "json":
            from mnetcost.cli.render import render_json

            click.echo(render_json(found.as_dict()))
        found.require_priced()
    return found


def file_dtype(found, dtype: str | None, runtime: str | None) -> str:
    """The memory figures' precision: the file's own (int8 when its weights are int8, else fp32); another
    --dtype is refused."""
    if dtype is not None and dtype != found.dtype:
        fail(f"--dtype {dtype} does not apply to {found.name}: the file stores {found.dtype} (drop --dtype)")
    return found.dtype


def table(ctx, variant, convention, dtype, target, max_peak_memory, max_weight_bytes, flash_reserve, runtime, build,
          fmt) -> None:
    """``mnetcost table --variant FILE.tflite``: the file's operators as layers, priced by the cost rules,
    with its memory (simple or TFLM's arena for the file as it is) and the verdict against a board."""
    from mnetcost.calculator import tflm
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.report import fit_dict, network_report
    from mnetcost.cli.commands.table import layer_view
    from mnetcost.cli.render import emit

    from mnetcost.cli.options import tflm_build_for

    refuse_spec_options(ctx, variant)
    budgeted = target is not None or max_peak_memory is not None or max_weight_bytes is not None
    if str(variant).lower().endswith(".onnx"):
        if runtime == "tflm":
            fail(f"--runtime tflm runs .tflite files; {variant} is an ONNX file (convert it, or use --runtime "
                 "simple)")
        from mnetcost.calculator.importers import onnx as IO

        tflm_build_for(build, "simple", target)  # --tflm-build needs --runtime tflm
        network = IO.read(variant)
        cost = network_cost(network, convention, dtype or "fp32")
        figures = {"runtime": "simple"}
        model = {"file": str(variant), "file_bytes": os.path.getsize(variant), "format": "onnx", "dtype": cost.dtype,
                 "layers": len(network.layers),
                 "input_shape": [1, network.spec.in_channels, *network.resolution]}
    else:
        found = read_model(variant, fmt)
        dtype = file_dtype(found, dtype, runtime)
        runtime = runtime or ("tflm" if budgeted else "simple")
        build = tflm_build_for(build, runtime, target)
        cost = network_cost(found.network, convention, dtype)
        figures = (tflm.file_figures(found.graph, found.size, found.parts, build) if runtime == "tflm"
                   else {"runtime": "simple"})
        if budgeted and runtime == "tflm" and figures["runtime_code_bytes"] is None:
            from mnetcost.calculator import tflite_model as TM

            unknown = sorted(set(TM.operator_codes(found.graph)) - set(tflm.OPERATOR_CODE_BYTES))
            fail(f"no Cortex-M7 code size measured for TFLM's {', '.join(unknown)} kernel"
                 f"{'s' if len(unknown) > 1 else ''} of {found.name}: the Flash verdict cannot count TFLM's code "
                 "(drop --target and the budgets to see the arena, or use --runtime simple)")
        model = {**found.as_dict(), "format": "tflite"}
    report = network_report(cost, fit=fit_dict(cost, target, max_peak_memory, max_weight_bytes, figures,
                                               flash_reserve))
    report.update(figures)
    report["model_file"] = model
    emit(fmt, report, [layer_view(report)])

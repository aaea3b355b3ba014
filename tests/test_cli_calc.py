"""The calculator commands as a user runs them: outputs, JSON contracts, errors, import hygiene."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mnetcost.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_worked_example_prints_053_and_05():
    result = run("ratio", "--M", "64", "--N", "128", "--alpha", "0.5", "--delta", "2")
    assert result.exit_code == 0
    assert "73/137" in result.output
    assert "ratio ≈ 0.53 (exact), 0.50 (α²·δ)" in result.output
    assert "(α·D_K² + α²·N)·δ / (D_K² + N)" in result.output


def test_ratio_json_contract():
    data = json.loads(run("ratio", "--M", "64", "--N", "128", "--alpha", "0.5", "--delta", "2",
                          "--format", "json").output)
    assert round(data["ratio_params"], 2) == 0.53 and data["ratio_params_fraction"] == "73/137"
    assert data["ratio_mult_adds"] == data["ratio_params"]
    assert data["approx"] == 0.5
    assert data["modified"]["dw_params"] == 576 and data["modified"]["pw_params"] == 4096
    assert data["original"]["mult_adds"] == (576 + 8192) * 32 * 32
    assert data["kernel"] == 3 and data["feature"] == 32


def test_ratio_with_non_integer_channels_says_so():
    data = json.loads(run("ratio", "--M", "10", "--N", "20", "--alpha", "0.25", "--format", "json").output)
    assert data["modified"]["in_channels"] == 2 and data["modified"]["out_channels"] == 5  # int(2.5), int(5.0)
    assert not data["channels_are_integers"]
    assert data["ratio_formula_fraction"] == "7/58"  # (9/4 + 20/16) / 29
    assert data["ratio_params_fraction"] == "28/290".replace("28/290", "14/145")  # (18 + 10) / (90 + 200)


def test_table_json_contract():
    data = json.loads(run("table", "--variant", "fmp", "--alpha", "0.25", "--delta", "2", "--format", "json").output)
    for key in ("variant", "alpha", "delta", "classes", "resolution", "convention", "params", "mult_adds", "layers"):
        assert key in data
    assert (data["variant"], data["alpha"], data["delta"], data["classes"], data["resolution"]) == ("fmp", 0.25, 2, 10, 32)
    assert data["convention"] == "paper"
    assert data["mult_adds"] == sum(layer["mult_adds"] for layer in data["layers"])
    assert data["params"] == sum(layer["params"] for layer in data["layers"])
    first = data["layers"][0]
    assert first["name"] == "conv1" and first["type"] == "conv"
    assert first["input"] == [32, 32, 3] and first["output"] == [32, 32, 8]
    assert first["params"] == 3 * 3 * 3 * 8 + 4 * 8 and first["mult_adds"] == 216 * 1024
    assert all(isinstance(layer["mult_adds"], int) for layer in data["layers"])


def test_table_grid_json_is_a_list_with_baseline_change():
    data = json.loads(run("table", "--alpha", "1,0.5,0.25", "--delta", "2,4", "--format", "json").output)
    assert [(row["alpha"], row["delta"]) for row in data] == [
        (1.0, 2), (1.0, 4), (0.5, 2), (0.5, 4), (0.25, 2), (0.25, 4)]
    row = data[3]  # alpha 0.5, delta 4: the paper's "+2.1 % Mult-Adds" example of section IV.A
    assert row["baseline_mult_adds"] == 11_596_288
    assert round(row["mult_adds_change"], 3) == 0.021


def test_table_all_formats_and_conventions():
    for fmt in ("table", "markdown", "csv"):
        result = run("table", "--variant", "mp3", "--format", fmt)
        assert result.exit_code == 0 and "conv_pw_13" in result.output
    csv_out = run("table", "--variant", "base", "--format", "csv").output.splitlines()
    assert csv_out[0] == ("name,type,kernel,stride,groups,in_h,in_w,in_c,out_h,out_w,out_c,params,mult_adds,"
                          "input_bytes_fp32,output_bytes_fp32,activation_bytes_fp32,peak,weight_bytes_fp32,"
                          "training_bytes_per_image_fp32")
    assert csv_out[3] == "conv_pw_1,pw,1,1,1,16,16,32,16,16,64,2304,524288,32768,65536,98304,true,8448,131072"
    assert csv_out[-1] == "fc,fc,1,1,1,1,1,1024,1,1,10,10250,10240,4096,40,4136,false,41000,8192"  # no totals row
    layers = [line.split(",") for line in csv_out[1:]]
    assert sum(int(cells[11]) for cells in layers) == 3_239_114 and sum(int(cells[12]) for cells in layers) == 11_596_288
    flops = json.loads(run("table", "--convention", "flops", "--format", "json").output)
    assert flops["flops"] == 2 * flops["mult_adds"] == 2 * 11_596_288
    assert flops["unit"] == "FLOPs"


def test_table_with_a_spec_path(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "custom_spec.toml"
    data = json.loads(run("table", "--variant", str(example), "--resolution", "64", "--format", "json").output)
    assert data["variant"] == "tiny-hybrid" and data["resolution"] == 64


def test_paper_json_contract_and_verdicts():
    data = json.loads(run("paper", "--format", "json").output)
    assert len(data) == 42
    for key in ("table", "dataset", "alpha", "delta", "paper_mult_adds", "paper_params", "mult_adds", "params",
                "accuracy"):
        assert key in data[0]
    assert all(row["params_verdict"] == "agrees" for row in data)
    by = {(r["table"], r["dataset"], r["variant"], r["alpha"], r["delta"]): r for r in data}
    assert by[(4, "cifar10", "base", 1.0, 2)]["mult_adds_verdict"] == "agrees"
    assert by[(6, "cifar10", "fmp", 1.0, 2)]["mult_adds"] == 139_007_232  # = tests/test_cost.py reference("fmp", 1, 2, 10)
    # Table 5's CIFAR-100 alpha=0.25 delta=2 row prints fewer Mult-Adds than its CIFAR-10 row,
    # though only the classifier (256 x 90 more weights) differs.
    mp3 = by[(5, "cifar100", "mp3", 0.25, 2)]
    pair = [c for c in mp3["checks"] if c["check"] == "dataset_pair" and c["quantity"] == "Mult-Adds"][0]
    assert not pair["consistent"] and pair["exact_difference"] == 256 * 90
    # Table 5's mp3 rows: only conv1 differs from Table 1 (it runs at 32x32 instead of 16x16).
    variant_pair = [c for c in by[(5, "cifar10", "mp3", 1.0, 2)]["checks"] if c["check"] == "variant_pair"][0]
    assert variant_pair["layers_that_differ"] == ["conv1"]
    assert variant_pair["exact_difference"] == 3 * 3 * 3 * 32 * (32 * 32 - 16 * 16)


def test_paper_filters():
    data = json.loads(run("paper", "--table", "6", "--dataset", "cifar100", "--format", "json").output)
    assert {(r["table"], r["dataset"]) for r in data} == {(6, "cifar100")}
    assert "Table 6, CIFAR-100" in run("paper", "--table", "6", "--dataset", "cifar100").output


@pytest.mark.parametrize("args,message", [
    (["ratio", "--M", "64", "--N", "128", "--alpha", "0"], "alpha must be a number greater than 0"),
    (["ratio", "--M", "64", "--N", "128", "--alpha", "abc"], "alpha must be a number greater than 0"),
    (["ratio", "--M", "64", "--N", "128", "--delta", "2.5"], "delta must be a positive integer"),
    (["ratio", "--M", "0", "--N", "128"], "must be a positive integer"),
    (["ratio", "--M", "64", "--N", "128", "--kernel", "-3"], "must be a positive integer"),
    (["ratio", "--M", "64", "--N", "128", "--feature", "0"], "must be a positive integer"),
    (["ratio", "--N", "128"], "Missing option '--M'"),
    (["table", "--variant", "resnet"], "unknown variant 'resnet'"),
    (["table", "--alpha", "1,,2"], "alpha list has an empty item"),
    (["table", "--delta", "0"], "delta must be a positive integer"),
    (["table", "--classes", "0"], "classes must be a positive integer"),
    (["table", "--resolution", "-32"], "resolution must be a positive integer"),
    (["table", "--format", "xml"], "'xml' is not one of"),
    (["table", "--variant", "fmp", "--resolution", "1"], "the input resolution is too small"),
    (["table", "--alpha", "0.01"], "alpha is too small"),
    (["paper", "--table", "7"], "'7' is not one of"),
    (["nonsense"], "No such command 'nonsense'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_malformed_spec_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[layers]]\ntype = "conv"\nfilters = -1\n[[layers]]\ntype = "fc"\n')
    result = CliRunner().invoke(main, ["table", "--variant", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: row 1 (conv): field 'filters' must be a positive integer" in result.stderr


def test_alpha_above_one_is_allowed_but_flagged():
    result = CliRunner().invoke(main, ["table", "--alpha", "1.5", "--format", "json"])
    assert result.exit_code == 0
    assert "note: alpha 1.5 > 1" in result.stderr
    assert json.loads(result.stdout)["layers"][0]["output"] == [16, 16, 48]


def test_analytic_commands_never_import_heavy_modules():
    code = (
        "import sys\n"
        "from mnetcost.cli import main\n"
        "for args in (['ratio','--M','64','--N','128','--alpha','0.5','--delta','2'],"
        " ['table','--variant','fmp','--alpha','1,0.5','--delta','2'], ['table','-v','mp3','--format','json'],"
        " ['paper','--format','csv']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'fvcore', 'matplotlib', 'pandas') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "mnetcost", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "mnetcost" in result.stdout


def test_rich_and_plain_renderers_show_the_same_cells():
    import io

    from rich.console import Console

    from mnetcost.cli.commands.table import layer_view
    from mnetcost.calculator.cost import network_cost
    from mnetcost.cli.render import print_rich, render_plain
    from mnetcost.calculator.report import network_report
    from mnetcost.calculator.resolver import resolve

    view = layer_view(network_report(network_cost(resolve("fmp", 0.25, 2))))
    buffer = io.StringIO()
    print_rich([view], Console(file=buffer, width=200, color_system=None))
    plain = render_plain([view])
    for text in ("conv_dw_13", "FMP / s1.44", "3 × 3 × (8 × 2)", "22×22×8", "433,458", "9,576,768"):
        assert text in buffer.getvalue() and text in plain
    assert "\x1b[" not in plain


@pytest.mark.parametrize("command, extra", [
    (["train", "--epochs", "1"], "torch"),
    (["crosscheck"], "torch and fvcore"),
    (["bench"], "torch"),
])
def test_torch_commands_without_the_extra_say_how_to_install_it(tmp_path, command, extra):
    """A calculator-only install (no torch): one line naming the extra, exit 2, nothing written."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['fvcore'] = None; "  # import torch -> ImportError
            "from mnetcost.cli import main; sys.argv = ['mnetcost'] + sys.argv[1:]; main()")
    result = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"needs {extra}" in result.stderr and "pip install 'mnetcost[torch]'" in result.stderr
    assert list(tmp_path.iterdir()) == []

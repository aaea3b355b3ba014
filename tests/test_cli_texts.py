"""What a user reads: help texts, footers and notes say what the tool does (the figure each budget
judges, where a recipe comes from, which convention reproduces a published figure)."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner

from mnetcost.cli import main


def run(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def one_line(text: str) -> str:
    """Help text with click's wrapping undone."""
    return " ".join(text.split())


# --- the TFLM breakdown in tflite-micro's own category names ------------------------------------------
def test_the_tflm_tail_is_broken_down_by_the_recording_allocators_categories():
    args = ("table", "--variant", "base", "--alpha", "0.25", "--delta", "2", "--runtime", "tflm")
    report = json.loads(run(*args, "--format", "json").stdout)
    parts = report["arena_persistent_parts"]
    text = run(*args).stdout
    line = next(line for line in text.splitlines() if line.startswith("TensorFlow Lite Micro"))
    for name in ("TfLiteEvalTensor data", "Persistent TfLiteTensor data", "Persistent TfLiteTensor quantization data",
                 "Persistent buffer data", "NodeAndRegistration struct"):
        assert f"'{name}' {parts[name]:,} B" in line
    assert parts["Persistent buffer data"] == 34_224
    # the category holds more than the per-channel arrays: it is never given their name alone
    assert "per-channel multipliers and shifts 34,224" not in line
    assert "op data" in line and "input/output pointer" in line
    # every byte of the persistent part is named once
    persistent = re.search(r"persistent ([\d,]+) B \((.*)\); smallest", line)
    shown = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) B", persistent.group(2))]
    assert sum(shown) == report["arena_persistent_bytes"] == int(persistent.group(1).replace(",", "")) == 39_664


# --- the figure each budget judges ----------------------------------------------------------------------
def option_help(command: str, option: str) -> str:
    """The help of ``option`` in ``mnetcost COMMAND --help``, on one line."""
    lines = run(command, "--help").stdout.splitlines()
    lines = lines[lines.index("Options:") + 1:]
    start = next(n for n, line in enumerate(lines)
                 if re.match(rf"\s+(-\w, )?{option}[ /]", line))
    end = next((n for n in range(start + 1, len(lines)) if lines[n].lstrip().startswith("-")
                and len(lines[n]) - len(lines[n].lstrip()) <= len(lines[start]) - len(lines[start].lstrip())),
               len(lines))
    return one_line(" ".join(lines[start:end]))


def test_the_help_names_the_figure_each_budget_judges_under_each_runtime():
    for command in ("table", "sweep"):
        ram = option_help(command, "--max-peak-memory")
        assert "TensorFlow Lite Micro's arena with --runtime tflm" in ram
        assert "peak activation bytes with --runtime simple" in ram
        flash = option_help(command, "--max-weight-bytes")
        assert ".tflite file's bytes with --runtime tflm" in flash
        assert "deployed weight bytes with --runtime simple" in flash
        target = option_help(command, "--target")
        assert "arena" in target and ".tflite" in target and "peak activation bytes" in target


def test_the_sweep_footer_describes_the_columns_it_shows_and_what_each_budget_judged():
    footer = run("sweep", "--target", "stm32f746", "--known-only").stdout
    memory = next(line for line in footer.splitlines() if line.startswith("memory at int8"))
    assert "TFLM arena" in footer and "peak RAM" not in footer  # neither the column nor its description
    assert "RAM budget, against the arena needed column: the stm32f746's 320.0 KiB SRAM" in memory
    assert "Flash budget, against the .tflite column + TFLM code + reserve 32,768 B: the stm32f746's 1.00 MiB Flash" in memory
    simple = run("sweep", "--max-peak-memory", "256KiB", "--max-weight-bytes", "1MiB").stdout
    memory = next(line for line in simple.splitlines() if line.startswith("memory at fp32"))
    assert "RAM budget, against the peak RAM fp32 column: your --max-peak-memory budget 262,144 B" in memory
    assert "Flash budget, against the weights fp32 column + reserve 32,768 B: your --max-weight-bytes budget 1,048,576 B" in memory
    assert "TFLM" not in simple


# --- what the paper states, and what mnetcost chose ---------------------------------------------------
def test_train_help_credits_the_paper_only_with_what_it_states():
    text = one_line(run("train", "--help").stdout)
    assert "paper's recipe" not in text
    assert "The paper states Adam, 10 % dropout before the classifier and no data augmentation" in text
    assert "--lr 1e-3 (Keras's Adam default), --batch-size 128 and --epochs 10 are mnetcost's choices" in text
    assert "128 is mnetcost's choice" in option_help("train", "--batch-size")
    assert "the paper gives none" in option_help("train", "--lr")


# --- help that describes the command it belongs to ------------------------------------------------------
def test_no_help_mentions_an_option_its_command_lacks():
    for command in ("crosscheck", "paper", "plot"):
        text = run(command, "--help").stdout
        assert "--target" not in text, command
    assert "[default: simple]" in one_line(run("paper", "--help").stdout)
    for command in ("table", "sweep"):  # these have --target, and say what it changes
        assert "the default with --target" in option_help(command, "--dtype")


def test_the_top_level_help_names_every_built_in_variant_family():
    text = one_line(run("--help").stdout)
    for name in ("base", "mp3", "fmp", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "_mp3 and _fmp"):
        assert name in text


def test_a_note_about_many_values_gives_their_count_and_range():
    result = CliRunner().invoke(main, ["sweep", "-a", "0.5:1.5:0.01", "--max-mult-adds", "1M", "--format", "csv"])
    assert result.exit_code == 0
    assert ("note: 50 alpha values > 1 (from 1.01 to 1.5) widen every layer beyond MobileNet's widths"
            in result.stderr)
    assert "1.02" not in result.stderr
    few = CliRunner().invoke(main, ["table", "-a", "1.5,2", "--format", "csv"])
    assert "note: alpha 1.5, 2 > 1 widens every layer" in few.stderr


# --- the papers' figures and the convention that gives each ------------------------------------------
def test_the_footer_says_which_convention_reproduces_each_published_figure():
    line = run("table", "-v", "mobilenet_v3_large").stdout.splitlines()[-1]
    assert line.startswith("published (Howard et al. 2019, Searching for MobileNetV3, Table 3;")
    # the default convention's figures, then the convention whose exact count prints as the paper's
    assert "219 M Mult-Adds: this output's 'paper' count is 216,589,760; --convention elementwise gives 219,125,848" \
        in line
    assert "5.4 M params: this output's 'paper' count is 5,507,432; --convention trainable gives 5,483,032" in line
    elementwise = run("table", "-v", "mobilenet_v3_large", "--convention", "elementwise").stdout
    assert "219 M Mult-Adds: this output's 219,125,848 (convention 'elementwise') prints as it" in elementwise
    v2 = json.loads(run("table", "-v", "mobilenet_v2", "--format", "json").stdout)["published"]
    params = next(figure for figure in v2 if figure["quantity"] == "params")
    assert params["printed_millions"] == "3.4" and params["source"] == "Sandler et al. 2018, MobileNetV2, Table 4"
    assert params["reproduced_by"] == {"weights": 3_470_760, "deploy": 3_487_816}  # 3.47 M and 3.49 M
    assert params["counts"]["paper"] == 3_538_984  # 3.53 M: not the paper's 3.4 M


def test_only_the_published_model_gets_the_papers_figures(tmp_path):
    for args in (("-a", "0.75"), ("-c", "10"), ("-r", "160"), ("-d", "2"), ("--rounding", "truncate")):
        result = run("table", "-v", "mobilenet_v3_large", *args, "--format", "json")
        assert "published" not in json.loads(result.stdout), args
    assert "published" not in json.loads(run("table", "-v", "mobilenet_v3_large_fmp", "--format", "json").stdout)
    impostor = tmp_path / "v3.toml"  # takes the name, and changes the model
    impostor.write_text('name = "mobilenet_v3_large"\nextends = "mobilenet_v3_large"\nresolution = 224\n'
                        'activation = "relu6"\n')
    assert "published" not in json.loads(run("table", "-v", str(impostor), "--format", "json").stdout)


def test_a_count_prints_as_a_figure_when_truncated_to_its_digits():
    from decimal import Decimal

    from mnetcost.calculator.published import prints_as

    assert prints_as(3_470_760, Decimal("3.4")) and prints_as(3_499_999, Decimal("3.4"))
    assert not prints_as(3_500_000, Decimal("3.4")) and not prints_as(3_399_999, Decimal("3.4"))
    assert prints_as(219_999_999, Decimal("219")) and not prints_as(218_999_999, Decimal("219"))


def test_the_sweep_footer_names_the_convention_of_each_published_figure_too():
    text = run("sweep", "-v", "mobilenet_v3_large,base", "-a", "1,0.75", "-d", "1").stdout
    line = next(line for line in text.splitlines() if line.startswith("mobilenet_v3_large: published"))
    assert "--convention elementwise gives 219,125,848" in line and "--convention trainable gives 5,483,032" in line
    assert "base: published" not in text
    for args in (("-a", "0.75"), ("-a", "1", "--classes", "10"), ("-a", "1", "--rounding", "truncate")):
        assert "published" not in run("sweep", "-v", "mobilenet_v3_large", *args).stdout, args


def test_a_note_about_many_skipped_alphas_gives_their_range_and_count():
    result = CliRunner().invoke(main, ["sweep", "-v", "base", "-a", "0.001:0.05:0.001", "--max-mult-adds", "1M",
                                       "--format", "csv"])
    assert result.exit_code == 0
    assert ("note: skipped 93 base configurations (classes 10, 32px) with alpha from 0.001 to 0.031 (31 values): "
            "layer conv1 would have 0 channels") in result.stderr
    few = CliRunner().invoke(main, ["sweep", "-v", "base", "-a", "0.001,0.002,0.5", "--format", "csv"])
    assert "with alpha 0.001, 0.002: layer conv1" in few.stderr

"""Spec files: the built-ins, the example, and errors that name the file, the row and the field."""
from pathlib import Path

import pytest

from mnetcost.errors import SpecError
from mnetcost.calculator.resolver import resolve
from mnetcost.calculator.spec import BUILTIN_VARIANTS, load_spec, parse_spec

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_spec.toml"


@pytest.mark.parametrize("name,table,rows", [("base", 1, 12), ("mp3", 2, 16), ("fmp", 3, 21)])
def test_builtin_specs(name, table, rows):
    spec = load_spec(name)
    assert (spec.name, spec.paper_table, len(spec.rows), spec.in_channels) == (name, table, rows, 3)
    assert name in BUILTIN_VARIANTS


def test_fmp_spec_uses_the_ratio_that_reproduces_table_3():
    assert {row["ratio"] for row in load_spec("fmp").rows if row.type == "fmp"} == {1.44}


def test_example_spec_loads_and_resolves():
    spec = load_spec(str(EXAMPLE))
    assert spec.name == "tiny-hybrid"
    net = resolve(spec, 0.5, 2, 10, 64)
    assert [l.name for l in net.layers][:3] == ["conv1", "maxpool_1", "conv_dw_1"]
    assert net.layer("fmp_1").output_shape == (22, 22, 32)
    assert net.layer("conv_dw_3").output_shape == (11, 11, 64)


GOOD_TAIL = '[[layers]]\ntype = "fc"\n'


@pytest.mark.parametrize("text,message", [
    ('[[layers]]\ntype = "conv"\n' + GOOD_TAIL, "my.toml: row 1 (conv): field 'filters' is missing"),
    ('[[layers]]\ntype = "conv"\nfilters = "32"\n' + GOOD_TAIL,
     "my.toml: row 1 (conv): field 'filters' must be an integer, got '32'"),
    ('[[layers]]\ntype = "conv"\nfilters = 32\nstride = 0\n' + GOOD_TAIL,
     "my.toml: row 1 (conv): field 'stride' must be a positive integer, got 0"),
    ('[[layers]]\ntype = "conv"\nfilters = true\n' + GOOD_TAIL, "field 'filters' must be an integer"),
    ('[[layers]]\ntype = "dws"\nfilters = 64\nwidth = 3\n' + GOOD_TAIL,
     "my.toml: row 1 (dws): field 'width' is not a field of 'dws' rows"),
    ('[[layers]]\ntype = "fmp"\nratio = 1.0\n' + GOOD_TAIL,
     "my.toml: row 1 (fmp): field 'ratio' must be greater than 1"),
    ('[[layers]]\ntype = "pool"\n' + GOOD_TAIL, "my.toml: row 1: field 'type': unknown layer type 'pool'"),
    ('[[layers]]\nfilters = 3\n' + GOOD_TAIL, "my.toml: row 1: field 'type' is missing"),
    ('[[layers]]\ntype = "conv"\nfilters = 8\n', "my.toml: row 1 (conv): the last row must be 'fc'"),
    (GOOD_TAIL + GOOD_TAIL, "my.toml: row 1 (fc): 'fc' may only be the last row"),
    ('name = "x"\n', "my.toml: no [[layers]] rows"),
    ('[[layers]\n', "my.toml: not valid TOML"),
    ('colour = "red"\n' + GOOD_TAIL, "my.toml: unknown top-level field 'colour'"),
    ('in_channels = 0\n' + GOOD_TAIL, "my.toml: top-level field 'in_channels' must be positive"),
])
def test_malformed_specs_name_file_row_and_field(text, message):
    with pytest.raises(SpecError) as info:
        parse_spec(text, "my.toml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_unreadable_spec_files(tmp_path):
    with pytest.raises(SpecError, match="unknown variant 'nope'"):
        load_spec("nope")
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(str(tmp_path))
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec(str(binary))


def test_a_custom_file_named_like_nothing_builtin(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[layers]]\ntype = "conv"\nfilters = 8\nstride = 2\n[[layers]]\ntype = "avgpool"\n' + GOOD_TAIL)
    spec = load_spec(str(path))
    assert spec.name == "mine"
    net = resolve(spec, 1.0, 1, 5, 8)
    assert net.layer("fc").input_shape == (1, 1, 8)


@pytest.mark.parametrize("body, words", [
    ("x = " + "[" * 50_000 + "]" * 50_000 + "\n" + '[[layers]]\ntype = "fc"\n', "nest too deeply"),
    ("x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n" + '[[layers]]\ntype = "fc"\n', "nest too deeply"),
    ("in_channels = " + "9" * 5_000 + "\n" + '[[layers]]\ntype = "fc"\n', "4300 digits"),
    ('[[layers]]\ntype = "conv"\nfilters = ' + "9" * 400 + "\n" + '[[layers]]\ntype = "fc"\n',
     "layer conv1: its width times alpha is beyond a floating-point number's range"),
])
@pytest.mark.parametrize("command", ["table", "sweep"])
def test_hostile_spec_files_are_one_line_and_exit_2(tmp_path, body, words, command):
    from click.testing import CliRunner

    from mnetcost.cli import main

    spec = tmp_path / "hostile.toml"
    spec.write_text('name = "hostile"\n' + body)
    result = CliRunner().invoke(main, [command, "-v", str(spec)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnetcost: error: ") and words in lines[0], result.stderr
    assert str(spec) in lines[0]


@pytest.mark.parametrize("top, words", [
    ('name = "evil\\ntotal: 1 params"\n', "top-level field 'name' must be one line of printable characters"),
    ('name = "evil\\r"\n', "top-level field 'name' must be one line"),
    ('name = "ok"\ntitle = "a\\u2028b"\n', "top-level field 'title' must be one line"),
    ('name = "a\\u001b[2Jb"\n', "top-level field 'name' must be one line"),
])
def test_a_name_with_a_control_character_cannot_forge_output_lines(top, words):
    with pytest.raises(SpecError, match=words):
        parse_spec(top + GOOD_TAIL, "my.toml")


def test_a_file_name_with_a_newline_needs_a_name(tmp_path):
    path = tmp_path / "evil\ntotal.toml"
    path.write_text(GOOD_TAIL)
    with pytest.raises(SpecError, match="holds a control character; give it a top-level 'name'"):
        load_spec(str(path))
    path.write_text('name = "fine"\n' + GOOD_TAIL)
    assert load_spec(str(path)).name == "fine"

"""Keep the whole CLI honest: every command driven with generated arguments — numbers at the
edges, odd strings, bad paths, every --format — must exit 0, 1 or 2, never with a traceback;
an error is one line (``mnetcost: error: ...``, the last line on stderr); and a command that
refuses writes nothing. In-process (click's CliRunner), so a few hundred invocations take
seconds; the commands that train, time or export are only driven into refusals (one argument
is always invalid), which they must give before any work."""
import os
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnetcost.cli import main
from mnetcost.cli.render import FORMATS

EDGE_NUMBERS = ["0", "1", "2", "3", "-1", "-0", "0.5", "0.25", ".5", "1.", "+3", "1e9", "1e300", "1e400", "1e-400",
                "nan", "NaN", "inf", "-inf", "Infinity", "1_000", "١٠", "²", "³²", "６４", "0x10", "1e", "", " ",
                "9" * 120, "4,2", "1,1,2", "0.25:1:0.25", "1:0:1", "0.1:0.2:0", "0.5:0.5:1", "10M", "1.5G", "3K",
                "2X", "100000000000000000", "1000000"]
ODD = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
NUMBER = st.one_of(st.sampled_from(EDGE_NUMBERS), st.integers(-3, 10**6).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr), ODD)
INVALID = st.sampled_from(["nan", "0", "-1", "١٠", "abc", "1e400", "²", ""])  # never a valid α
PATHS = ["{tmp}/out.png", "{tmp}/out.svg", "{tmp}/out.json", "{tmp}/x.gif", "{tmp}/noext", "{tmp}",
         "{tmp}/missing/x.png", "{tmp}/afile/x.png", "{tmp}/afile", "/proc/x.png", "/sys/x.png", "/dev/null",
         "/dev/full", "", "{tmp}/spec.toml", "{tmp}/runs", "{tmp}/latency.json"]
PATH = st.one_of(st.sampled_from(PATHS), ODD)
VARIANT = st.one_of(st.sampled_from(["base", "mp3", "fmp", "all", "base,fmp", "nope", "", "{tmp}/spec.toml",
                                     "{tmp}/missing.toml", "{tmp}", "/dev/urandom", "{tmp}/afile"]), ODD)
FORMAT = st.sampled_from(list(FORMATS) + ["yaml", ""])


def choice(*values):
    return st.one_of(st.sampled_from(list(values)), ODD)


FLAG = None  # an option without a value
OPTIONS = {
    "ratio": {"--M": NUMBER, "--N": NUMBER, "--alpha": NUMBER, "--delta": NUMBER, "--kernel": NUMBER,
              "--feature": NUMBER, "--format": FORMAT},
    "table": {"--variant": VARIANT, "--alpha": NUMBER, "--delta": NUMBER, "--classes": NUMBER,
              "--resolution": NUMBER, "--convention": choice("paper", "flops", "fvcore", "deploy"),
              "--rounding": choice("truncate", "nearest", "divisible8"), "--format": FORMAT},
    "paper": {"--table": choice("4", "5", "6"), "--dataset": choice("cifar10", "cifar100"),
              "--dtype": choice("fp32", "fp16", "int8"), "--format": FORMAT},
    "sweep": {"--variant": VARIANT, "--alpha": NUMBER, "--delta": NUMBER, "--classes": NUMBER,
              "--resolution": NUMBER, "--max-mult-adds": NUMBER, "--max-params": NUMBER,
              "--sort": choice("mult_adds", "accuracy", "variant"), "--front": choice("mult_adds", "params"),
              "--known-only": FLAG, "--front-only": FLAG, "--limit": NUMBER, "--runs": PATH, "--format": FORMAT},
    "plot": {"--out": PATH, "--dataset": choice("cifar10", "cifar100"), "--x": choice("mult_adds", "params", "latency"),
             "--latency": PATH, "--runs": PATH, "--no-paper": FLAG, "--table": choice("4", "5", "6"),
             "--title": st.one_of(st.sampled_from(["$\\foo$", "a $ b", "^_{}%", ""]), ODD), "--format": FORMAT},
    "report": {"--metric": choice("best", "final"), "--format": FORMAT},
}
HEAVY = {  # driven into refusals only: their --alpha is always invalid
    "crosscheck": {"--variant": VARIANT, "--delta": NUMBER, "--classes": NUMBER, "--format": FORMAT},
    "train": {"--out": PATH, "--epochs": NUMBER, "--lr": NUMBER, "--batch-size": NUMBER, "--dropout": NUMBER,
              "--seed": NUMBER, "--threads": NUMBER, "--format": FORMAT},
    "grid": {"--out": PATH, "--seeds": NUMBER, "--delta": NUMBER, "--format": FORMAT},
    "bench": {"--out": PATH, "--plot": PATH, "--repeats": NUMBER, "--warmup": NUMBER, "--batch-size": NUMBER,
              "--format": FORMAT},
    "export": {"--out": PATH, "--tolerance": NUMBER, "--threads": NUMBER, "--format": FORMAT},
}
SPEC = (Path(__file__).resolve().parent.parent / "mnetcost" / "calculator" / "specs" / "base.toml").read_text()


def prepared(tmp: Path) -> None:
    """What the generated paths may name: a spec, a file in a folder's place, runs, a latency file."""
    (tmp / "spec.toml").write_text(SPEC)
    (tmp / "afile").write_text("not a folder")
    (tmp / "latency.json").write_text('{"results": []}')
    good = tmp / "runs" / "good"
    good.mkdir(parents=True)
    (good / "summary.json").write_text('{"variant": "base", "alpha": 0.25, "delta": 2, "classes": 10, '
                                       '"resolution": 32, "best_test_accuracy": 0.5, "dataset": "cifar10"}')
    (tmp / "runs" / "bad").mkdir()
    (tmp / "runs" / "bad" / "summary.json").write_text('{"alpha": 1e999}')


def state(tmp: Path) -> dict:
    return {str(p.relative_to(tmp)): (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp.rglob("*")}


def invoke_and_check(args: list[str], tmp: Path):
    before = state(tmp)
    result = CliRunner().invoke(main, args)
    shown = f"mnetcost {' '.join(map(repr, args))}\nstdout: {result.stdout[-500:]}\nstderr: {result.stderr}"
    assert result.exit_code in (0, 1, 2), shown
    assert result.exception is None or isinstance(result.exception, SystemExit), (result.exception, shown)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("mnetcost: error:")]
    if result.exit_code:
        assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], shown
        assert state(tmp) == before, f"a refused command wrote files\n{shown}"
    else:
        assert not errors, shown
    return result


def build(data, command: str, options: dict, tmp: Path, forced: list[str]) -> list[str]:
    chosen = data.draw(st.lists(st.sampled_from(sorted(options)), max_size=5, unique=True), label="options")
    args = [command]
    for option in chosen:
        strategy = options[option]
        args.append(option)
        if strategy is not None:
            args.append(data.draw(strategy, label=option).replace("{tmp}", str(tmp)))
    args += forced
    if data.draw(st.booleans(), label="junk"):
        args.insert(data.draw(st.integers(1, len(args)), label="at"), data.draw(ODD, label="junk value"))
    return args


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), command=st.sampled_from(["ratio", "table", "paper", "sweep", "report"]))
def test_calculator_commands_stay_honest(data, command):
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        prepared(tmp)
        forced = []
        if command == "ratio" and data.draw(st.booleans(), label="M and N"):
            forced = ["--M", "64", "--N", "128"]
        if command == "report":
            forced = [data.draw(PATH, label="DIR").replace("{tmp}", str(tmp))]
        invoke_and_check(build(data, command, OPTIONS[command], tmp, forced), tmp)


@settings(max_examples=14, **SETTINGS)
@given(data=st.data())
def test_plot_stays_honest(data):
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        prepared(tmp)
        out = data.draw(st.one_of(st.just("{tmp}/out.png"), PATH), label="--out").replace("{tmp}", str(tmp))
        result = invoke_and_check(build(data, "plot", OPTIONS["plot"], tmp, ["--out", out]), tmp)
        if result.exit_code == 0:  # the figure is the only file written, and it is complete
            written = set(state(tmp)) - {"spec.toml", "afile", "latency.json", "runs", "runs/good", "runs/bad",
                                         "runs/good/summary.json", "runs/bad/summary.json"}
            assert written <= {os.path.relpath(out, tmp)}, written


@settings(max_examples=40, **SETTINGS)
@given(data=st.data(), command=st.sampled_from(sorted(HEAVY)))
def test_heavy_commands_refuse_before_any_work(data, command):
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        prepared(tmp)
        bad = data.draw(INVALID, label="invalid alpha")
        result = invoke_and_check(build(data, command, HEAVY[command], tmp, ["--alpha", bad]), tmp)
        assert result.exit_code == 2

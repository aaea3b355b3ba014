"""The package's folders are its sides; each side may import only what its folder allows.

floor        mnetcost/errors.py, files.py, identity.py: the standard library only (every side uses them)
calculator/  standard library and numpy: never torch, fvcore, onnx, onnxruntime, matplotlib, pandas, TensorFlow
analysis/    reads the calculator; pandas/matplotlib only inside functions; never torch, onnx or TensorFlow
nn/          models and training: torch and fvcore; never onnx, onnxruntime or TensorFlow
deploy/      ONNX and TensorFlow Lite export and runtimes: anything
cli/         imports the other sides only inside the commands that need them
"""
from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import mnetcost

FORBIDDEN = {
    "calculator": ("torch", "fvcore", "onnx", "onnxruntime", "matplotlib", "pandas", "tensorflow", "keras",
                   "tflite_micro", "flatbuffers"),
    "analysis": ("torch", "fvcore", "onnx", "onnxruntime", "matplotlib", "pandas", "tensorflow", "keras",
                 "tflite_micro"),
    "nn": ("onnx", "onnxruntime", "onnxscript", "tensorflow", "keras", "tflite_micro"),
    "cli": ("torch", "fvcore", "onnx", "onnxruntime", "matplotlib", "pandas", "tensorflow", "keras", "tflite_micro"),
}


def modules_of(side: str) -> list[str]:
    package = __import__(f"mnetcost.{side}", fromlist=["_"])
    names = [f"mnetcost.{side}"]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"mnetcost.{side}."):
        names.append(info.name)
    return names


def test_the_sides_are_the_top_level_folders():
    sides = sorted(info.name for info in pkgutil.iter_modules(mnetcost.__path__) if info.ispkg)
    assert sides == ["analysis", "calculator", "cli", "deploy", "nn"]


@pytest.mark.parametrize("side", sorted(FORBIDDEN))
def test_importing_a_side_loads_nothing_it_may_not(side):
    """Import every module of the side in a fresh interpreter; none of its forbidden packages loads."""
    modules = modules_of(side)
    assert len(modules) > 1, modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in {FORBIDDEN[side]!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{side} loads {result.stdout.strip()}"


FLOOR = ("mnetcost.errors", "mnetcost.files", "mnetcost.identity")


def test_the_floor_is_top_level_modules_that_load_no_side_and_no_third_party_package():
    floor = sorted(f"mnetcost.{info.name}" for info in pkgutil.iter_modules(mnetcost.__path__)
                   if not info.ispkg and not info.name.startswith("_"))
    assert floor == sorted(FLOOR)
    code = (
        "import importlib, sys\n"
        f"for name in {FLOOR!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch', 'onnx', 'click', 'rich') or "
        "m.startswith(('mnetcost.calculator', 'mnetcost.analysis', 'mnetcost.nn', 'mnetcost.deploy', 'mnetcost.cli'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"the floor loads {result.stdout.strip()}"


def test_the_public_api_survives_the_move():
    from mnetcost.calculator.cost import network_cost
    from mnetcost.calculator.resolver import resolve

    assert mnetcost.resolve is resolve and mnetcost.network_cost is network_cost
    assert mnetcost.load_spec.__module__ == "mnetcost.calculator.spec"

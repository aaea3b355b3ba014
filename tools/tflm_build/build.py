"""Build tflite-micro from its public sources with zig and measure what mnetcost predicts (not run by CI).

What it does, each step a subcommand (all of them: ``all``):

``prepare``   extract tflite-micro and the third-party headers it needs (flatbuffers at the tag tflite-micro's
              download script names, patched by tflite-micro's own ``flatbuffers.patch``; gemmlowp's fixed point
              headers and ruy's profiler header at the commits of ``third_party_downloads.inc``) from git
              repositories into ``WORK/src``.
``arena``     compile the MicroInterpreter, the RecordingMicroAllocator and the reference kernels of the operators
              mnetcost's models and tflite-micro's example models use, with ``measure.cc``, into a 32-bit x86
              program (``-target x86-linux-musl``) and a 64-bit one (``x86_64-linux-musl``); run each on the given
              ``.tflite`` files and write the recorded arena (total, head, tail, by category), the smallest
              accepted ``arena_size`` and the struct sizes of that build.
``structs``   compile ``struct_sizes.cc`` for Cortex-M7 (``-mcpu=cortex_m7``, AAPCS) to assembly and read the
              sizes back: the layouts of the ARM EABI, where int64 and double are 8-byte aligned (i386 aligns
              them to 4 in structs); a C probe compiled for ``thumb-freestanding-eabi`` shows the same primitive
              layout as the target used for C++.
``codesize``  compile the framework and the kernels for Cortex-M7 (``-Os -ffunction-sections``) and link them
              with ``--gc-sections`` from one entry point per operator set (none: the framework; each operator
              alone: its increment; the operator sets of whole models: the check that the increments add up),
              the C library left unresolved; record the bytes of code and read-only data of each link.

Usage (the repositories can be bare mirrors; nothing is downloaded here)::

    python tools/tflm_build/build.py all --tflm GIT_DIR --flatbuffers GIT_DIR --gemmlowp GIT_DIR --ruy GIT_DIR \
        --work /tmp/tflm-work --out benchmarks/results/tflm_build.json MODEL.tflite ...

Needs the ``ziglang`` package (``pip install ziglang``) and git. Compiling takes several CPU minutes; run it
niced on a shared machine. Results go to one JSON file (``--out``), which mnetcost's tests read.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The third-party commits tflite-micro's make build downloads (tools/make/flatbuffers_download.sh and
# third_party_downloads.inc of the tflite-micro commit built).
FLATBUFFERS_TAG = "v25.9.23"
GEMMLOWP_COMMIT = "719139ce755a0f31cbf1c37f7f98adcc7fc9f425"
RUY_COMMIT = "d37128311b445e758136b8602d1bbd2a755e115d"

# Flags of tflite-micro's Makefile (COMMON_FLAGS, CXXFLAGS) that change what is compiled.
DEFINES = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DFLATBUFFERS_LOCALE_INDEPENDENT=0"]
CXXFLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", "-fno-unwind-tables",
            "-fno-asynchronous-unwind-tables", "-Wno-everything"]
HOST_TARGETS = {"x86": "x86-linux-musl", "x86_64": "x86_64-linux-musl"}
# Cortex-M7 with its FPU. The C++ sources need libc++ and C headers, which zig ships for its Linux targets only;
# thumb-linux-musleabihf has the same AAPCS data layout and Thumb-2 code as thumb-freestanding-eabihf (the
# ``structs`` step checks the layout of the primitive types on both).
CORTEX_M = ["-target", "thumb-linux-musleabihf", "-mcpu=cortex_m7"]

# Each builtin operator: the MicroMutableOpResolver method that registers it and its kernel files
# (tensorflow/lite/micro/kernels/, without .cc).
OPERATORS = {
    "ADD": ("AddAdd", ["add", "add_common"]),
    "AVERAGE_POOL_2D": ("AddAveragePool2D", ["pooling", "pooling_common"]),
    "CONCATENATION": ("AddConcatenation", ["concatenation"]),
    "CONV_2D": ("AddConv2D", ["conv", "conv_common"]),
    "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", ["depthwise_conv", "depthwise_conv_common"]),
    "DEQUANTIZE": ("AddDequantize", ["dequantize", "dequantize_common"]),
    "FULLY_CONNECTED": ("AddFullyConnected", ["fully_connected", "fully_connected_common"]),
    "GATHER": ("AddGather", ["gather"]),
    "HARD_SWISH": ("AddHardSwish", ["hard_swish", "hard_swish_common"]),
    "LOGISTIC": ("AddLogistic", ["logistic", "logistic_common"]),
    "MAX_POOL_2D": ("AddMaxPool2D", ["pooling", "pooling_common"]),
    "MEAN": ("AddMean", ["reduce", "reduce_common"]),
    "MUL": ("AddMul", ["mul", "mul_common"]),
    "PAD": ("AddPad", ["pad", "pad_common"]),
    "QUANTIZE": ("AddQuantize", ["quantize", "quantize_common"]),
    "RELU": ("AddRelu", ["activations", "activations_common"]),
    "RELU6": ("AddRelu6", ["activations", "activations_common"]),
    "RESHAPE": ("AddReshape", ["reshape", "reshape_common"]),
    "SOFTMAX": ("AddSoftmax", ["softmax", "softmax_common"]),
    "SVDF": ("AddSvdf", ["svdf", "svdf_common"]),
    "TRANSPOSE": ("AddTranspose", ["transpose", "transpose_common"]),
}
KERNEL_FILES = {name: files for name, (_, files) in OPERATORS.items()}
# The operator sets of mnetcost's paper models (base, mp3, fmp; the MobileNetV2 family adds ADD), linked
# whole to check the sum of the per-operator figures.
OPERATOR_SETS = {
    "base": ["CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"],
    "mp3": ["CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"],
    "fmp": ["CONV_2D", "GATHER", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"],
    "person_detect": ["AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "SOFTMAX"],
    "mobilenet_v2": ["ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "PAD", "RESHAPE",
                     "TRANSPOSE"],
}

# Kernel helpers every kernel build links (counted with the framework).
KERNEL_SHARED = ["kernel_util", "micro_tensor_utils"]
FRAMEWORK_EXCLUDE = re.compile(r"(_test|test_helpers|test_helper_custom_ops|fake_micro_context|mock_micro_graph)\.cc$")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def zig(*args) -> list[str]:
    return [sys.executable, "-m", "ziglang", *args]


def git_commit(repo: Path, rev: str = "HEAD") -> str:
    return run(["git", "-C", str(repo), "rev-parse", rev], capture_output=True).stdout.strip()


def extract(repo: Path, rev: str, paths: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(repo), "archive", rev, *paths], stdout=subprocess.PIPE)
    run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout)
    if archive.wait():
        raise SystemExit(f"git archive failed in {repo}")


def prepare(args) -> dict:
    src = args.work / "src"
    if src.exists():
        shutil.rmtree(src)
    tflm_commit = git_commit(args.tflm, args.tflm_rev)
    extract(args.tflm, tflm_commit, ["tensorflow", "signal", "third_party"], src / "tflm")
    extract(args.flatbuffers, FLATBUFFERS_TAG, ["include"], src / "flatbuffers")
    patch = src / "tflm/tensorflow/lite/micro/tools/make/flatbuffers.patch"
    run(["patch", "-s", "-p1", "-i", str(patch)], cwd=src / "flatbuffers")
    extract(args.gemmlowp, GEMMLOWP_COMMIT, ["fixedpoint", "internal"], src / "gemmlowp")
    extract(args.ruy, RUY_COMMIT, ["ruy/profiler"], src / "ruy")
    zig_version = run(zig("version"), capture_output=True).stdout.strip()
    return {"tflite_micro_commit": tflm_commit, "flatbuffers": FLATBUFFERS_TAG, "gemmlowp": GEMMLOWP_COMMIT,
            "ruy": RUY_COMMIT, "zig": zig_version}


def includes(args) -> list[str]:
    src = args.work / "src"
    return [f"-I{src / 'tflm'}", f"-I{src / 'flatbuffers/include'}", f"-I{src / 'gemmlowp'}", f"-I{src / 'ruy'}",
            f"-I{HERE}"]


def framework_sources(args) -> list[Path]:
    root = args.work / "src/tflm"
    micro = root / "tensorflow/lite/micro"
    found = [p for d in ("", "arena_allocator", "memory_planner", "tflite_bridge")
             for p in sorted((micro / d).glob("*.cc")) if not FRAMEWORK_EXCLUDE.search(p.name)]
    for p in sorted((root / "tensorflow").rglob("*.c*")):
        rel = p.relative_to(root).as_posix()
        if p.suffix in (".cc", ".c") and not rel.startswith(("tensorflow/lite/micro/", "tensorflow/lite/experimental/")) \
                and not p.name.endswith("_test.cc") and rel != "tensorflow/lite/array.cc":
            found.append(p)
    return found


def kernel_sources(args) -> list[Path]:
    kernels = args.work / "src/tflm/tensorflow/lite/micro/kernels"
    names = sorted({f for files in KERNEL_FILES.values() for f in files} | set(KERNEL_SHARED))
    found = [kernels / f"{name}.cc" for name in names]
    if args.compression:  # the kernels then call the decompression code
        found += sorted(p for p in kernels.glob("deco*.cc") if not p.name.endswith("_test.cc"))
    return found


def compile_all(sources, flags, objdir: Path, jobs: int) -> list[Path]:
    objdir.mkdir(parents=True, exist_ok=True)

    def one(source: Path) -> Path:
        obj = objdir / (source.as_posix().replace("/", "_").lstrip("_") + ".o")
        if not obj.exists() or obj.stat().st_mtime < source.stat().st_mtime:
            run(zig("c++" if source.suffix == ".cc" else "cc", *flags, "-c", str(source), "-o", str(obj)))
        return obj

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, sources))


def arena(args, meta: dict) -> dict:
    results = {}
    defines = DEFINES + (["-DUSE_TFLM_COMPRESSION"] if args.compression else [])
    for arch, triple in HOST_TARGETS.items():
        if arch not in args.arch:
            continue
        flags = ["-target", triple, "-O0", *defines, *CXXFLAGS, *includes(args)]  # the arena does not depend on it
        arch = arch + ("+compression" if args.compression else "")
        objs = compile_all(framework_sources(args) + kernel_sources(args) + [HERE / "measure.cc"], flags,
                           args.work / f"obj-{arch}", args.jobs)
        binary = args.work / f"measure-{arch}"
        run(zig("c++", "-target", triple, "-static", "-o", str(binary), *map(str, objs)))
        sizes = json.loads(run([str(binary), "sizes"], capture_output=True).stdout)
        models = {}
        for model in args.models:
            out = run([str(binary), str(model)], capture_output=True).stdout
            models[Path(model).name] = json.loads(out)
            print(arch, Path(model).name, models[Path(model).name]["arena_bytes"], file=sys.stderr)
        results[arch] = {"target": triple, "flags": ["-O0", *defines], **sizes, "models": models}
    return results


def parse_longs(assembly: str, symbol: str) -> list[int]:
    values, inside = [], False
    for line in assembly.splitlines():
        line = line.strip()
        if line.startswith(f"{symbol}:"):
            inside = True
            continue
        if inside:
            m = re.match(r"\.(long|word)\s+(\d+)", line)
            if m:
                values.append(int(m.group(2)))
            elif line.startswith(".size") or (line.endswith(":") and not line.startswith(".")):
                break
    return values


PROBE = """#include <stdint.h>
struct probe { char c; int64_t i; double d; void* p; };
const unsigned probe_layout[] = {sizeof(struct probe), _Alignof(int64_t), _Alignof(double), sizeof(void*),
                                 __builtin_offsetof(struct probe, i), __builtin_offsetof(struct probe, d)};
"""
PROBE_FIELDS = ("sizeof(struct{char; int64; double; void*})", "alignof(int64_t)", "alignof(double)",
                "sizeof(void*)", "offsetof(int64 after a char)", "offsetof(double)")


def primitive_layouts(args) -> dict:
    probe = args.work / "probe.c"
    probe.write_text(PROBE)
    found = {}
    for triple in ("thumb-freestanding-eabi", "thumb-linux-musleabihf", "x86-linux-musl", "x86_64-linux-musl"):
        out = args.work / f"probe-{triple}.s"
        cpu = ["-mcpu=cortex_m7"] if triple.startswith("thumb") else []
        run(zig("cc", "-target", triple, *cpu, "-S", str(probe), "-o", str(out)))
        found[triple] = dict(zip(PROBE_FIELDS, parse_longs(out.read_text(), "probe_layout")))
    return found


def structs(args) -> dict:
    out = args.work / "struct_sizes_cortex_m7.s"
    run(zig("c++", *CORTEX_M, "-O2", *DEFINES, *CXXFLAGS, *includes(args), "-S", str(HERE / "struct_sizes.cc"),
            "-o", str(out)))
    values = parse_longs(out.read_text(), "tflm_struct_sizes")
    header = (HERE / "struct_sizes.h").read_text()
    names = re.findall(r"^\s*X\(([^)]*)\)", header, re.M)
    if len(values) != 2 * len(names) + 1:
        raise SystemExit(f"read {len(values)} values for {len(names)} structs")
    return {"target": " ".join(CORTEX_M[1:]), "primitive_layout": primitive_layouts(args),
            "structs": {name: [values[2 * i], values[2 * i + 1]] for i, name in enumerate(names)}}


def section_bytes(elf: Path) -> dict[str, int]:
    """Bytes of each allocated section holding code or data (text, rodata, data, ARM.exidx; not bss) of a
    32-bit little-endian ELF file, from its section headers."""
    import struct
    blob = elf.read_bytes()
    if blob[4] != 1:
        raise SystemExit(f"{elf}: not a 32-bit ELF")
    shoff, = struct.unpack_from("<I", blob, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x2E)
    headers = [struct.unpack_from("<IIIIII", blob, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx][4]
    found = {}
    for name, sh_type, flags, _, _, size in headers:
        SHF_ALLOC, SHT_NOBITS = 0x2, 8
        if flags & SHF_ALLOC and sh_type != SHT_NOBITS:
            found[blob[names + name:blob.index(b"\0", names + name)].decode()] = size
    return found


APP = """// One entry point per operator set: a MicroInterpreter that registers these operators, allocates and
// invokes a model (linked with --gc-sections from one entry, so only the code it can reach is counted).
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
extern "C" const unsigned char model_data[];
alignas(16) static uint8_t arena[1024];
using Resolver = tflite::MicroMutableOpResolver<32>;
static int Run(const Resolver& resolver) {
  tflite::MicroInterpreter interpreter(tflite::GetModel(model_data), resolver, arena, sizeof arena);
  if (interpreter.AllocateTensors() != kTfLiteOk) return 1;
  return interpreter.Invoke() == kTfLiteOk ? 0 : 2;
}
"""


def codesize(args) -> dict:
    """Link the framework with each operator set for Cortex-M7 (-Os, --gc-sections, from one entry point;
    the C library's functions are left unresolved: an application brings its own) and record the bytes
    of code and read-only data: with no operator (the framework), with each operator alone (its
    increment) and with the operator sets of whole models."""
    flags = [*CORTEX_M, "-Os", "-ffunction-sections", "-fdata-sections", "-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS",
             *DEFINES, *CXXFLAGS, *includes(args)]
    framework = [p for p in framework_sources(args) if p.name != "system_setup.cc"]
    kernels = args.work / "src/tflm/tensorflow/lite/micro/kernels"
    files = sorted({f for names in KERNEL_FILES.values() for f in names} | set(KERNEL_SHARED))
    objdir = args.work / "obj-cortex-m7"
    objs = compile_all(framework + [kernels / f"{f}.cc" for f in files], flags, objdir, args.jobs)
    sets = {"framework": [], **{name: [name] for name in OPERATORS}, **{f"set:{k}": v for k, v in OPERATOR_SETS.items()}}
    app = args.work / "codesize_app.cc"
    text = APP
    for number, (name, ops) in enumerate(sets.items()):
        adds = "".join(f"r.{OPERATORS[op][0]}(); " for op in ops)
        text += f'extern "C" int entry_{number}() {{ Resolver r; {adds}return Run(r); }}  // {name}\n'
    app.write_text(text)
    app_obj = args.work / "codesize_app.o"
    run(zig("c++", *flags, "-c", str(app), "-o", str(app_obj)))
    linked = {}
    for number, name in enumerate(sets):
        elf = args.work / f"codesize_{number}.elf"
        run(zig("ld.lld", "--gc-sections", "--unresolved-symbols=ignore-all", "-e", f"entry_{number}", "-o", str(elf),
                str(app_obj), *map(str, objs)))
        linked[name] = sum(section_bytes(elf).values())
    base = linked["framework"]
    return {"target": " ".join(CORTEX_M[1:]),
            "flags": ["-Os", "-ffunction-sections", "-fdata-sections", "-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS",
                      *DEFINES],
            "link": "ld.lld --gc-sections --unresolved-symbols=ignore-all (C library not counted)",
            "framework_bytes": base,
            "operator_bytes": {name: linked[name] - base for name in OPERATORS},
            "operator_set_bytes": {name[4:]: {"operators": OPERATOR_SETS[name[4:]], "bytes": linked[name]}
                                   for name in linked if name.startswith("set:")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("prepare", "arena", "structs", "codesize", "all"))
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--tflm", type=Path, required=True, help="git directory of tensorflow/tflite-micro")
    parser.add_argument("--tflm-rev", default="HEAD")
    parser.add_argument("--flatbuffers", type=Path, help="git directory of google/flatbuffers")
    parser.add_argument("--gemmlowp", type=Path, help="git directory of google/gemmlowp")
    parser.add_argument("--ruy", type=Path, help="git directory of google/ruy")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON file of results (updated per step)")
    parser.add_argument("--arch", nargs="+", default=["x86", "x86_64"], choices=tuple(HOST_TARGETS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--compression", action="store_true",
                        help="arena step: build with USE_TFLM_COMPRESSION, as the tflite-micro Python package is built")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    steps = ("prepare", "arena", "structs", "codesize") if args.step == "all" else (args.step,)
    for step in steps:
        if step == "prepare":
            results["sources"] = prepare(args)
        elif step == "arena":  # models measured before stay, unless measured again
            for arch, found in arena(args, results.get("sources", {})).items():
                before = results.setdefault("arena", {}).get(arch, {}).get("models", {})
                results["arena"][arch] = {**found, "models": {**before, **found["models"]}}
        elif step == "structs":
            results["cortex_m7_structs"] = structs(args)
        else:
            results["cortex_m7_code"] = codesize(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

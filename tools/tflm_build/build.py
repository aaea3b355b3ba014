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
``codesize``  compile the framework and each kernel for Cortex-M7 with ``-Os -ffunction-sections`` and record the
              bytes of code and read-only data of every object file (text + rodata + data; no linking).

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

# The kernels each builtin operator needs (files of tensorflow/lite/micro/kernels/, without .cc); the
# operators are those measure.cc registers.
KERNEL_FILES = {
    "ADD": ["add", "add_common"],
    "AVERAGE_POOL_2D": ["pooling", "pooling_common"],
    "CONCATENATION": ["concatenation"],
    "CONV_2D": ["conv", "conv_common"],
    "DEPTHWISE_CONV_2D": ["depthwise_conv", "depthwise_conv_common"],
    "DEQUANTIZE": ["dequantize", "dequantize_common"],
    "FULLY_CONNECTED": ["fully_connected", "fully_connected_common"],
    "GATHER": ["gather"],
    "HARD_SWISH": ["hard_swish", "hard_swish_common"],
    "LOGISTIC": ["logistic", "logistic_common"],
    "MAX_POOL_2D": ["pooling", "pooling_common"],
    "MEAN": ["reduce", "reduce_common"],
    "MUL": ["mul", "mul_common"],
    "PAD": ["pad", "pad_common"],
    "QUANTIZE": ["quantize", "quantize_common"],
    "RELU": ["activations", "activations_common"],
    "RELU6": ["activations", "activations_common"],
    "RESHAPE": ["reshape", "reshape_common"],
    "SOFTMAX": ["softmax", "softmax_common"],
    "SVDF": ["svdf", "svdf_common"],
    "TRANSPOSE": ["transpose", "transpose_common"],
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
    return {"tflite_micro_commit": tflm_commit, "flatbuffers": FLATBUFFERS_TAG, "gemmlowp": GEMMLOWP_COMMIT,
            "ruy": RUY_COMMIT}


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
    return [kernels / f"{name}.cc" for name in names]


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
    for arch, triple in HOST_TARGETS.items():
        if arch not in args.arch:
            continue
        flags = ["-target", triple, "-O2", *DEFINES, *CXXFLAGS, *includes(args)]
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
        results[arch] = {"target": triple, "flags": flags[2:4] + DEFINES, **sizes, "models": models}
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


def section_bytes(obj: Path) -> int:
    """Bytes of allocated code and data (text, rodata, data; not bss) of an ELF object, from its section
    headers."""
    import struct
    blob = obj.read_bytes()
    if blob[4] != 1:  # ELFCLASS32 only (the Cortex-M objects)
        raise SystemExit(f"{obj}: not a 32-bit ELF")
    shoff, = struct.unpack_from("<I", blob, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", blob, 0x2E)
    total = 0
    for i in range(shnum):
        _, sh_type, flags, _, _, size = struct.unpack_from("<IIIIII", blob, shoff + i * shentsize)
        SHF_ALLOC, SHT_NOBITS = 0x2, 8
        if flags & SHF_ALLOC and sh_type != SHT_NOBITS:
            total += size
    return total


def codesize(args) -> dict:
    flags = [*CORTEX_M, "-Os", "-ffunction-sections", "-fdata-sections", "-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS",
             *DEFINES, *CXXFLAGS, *includes(args)]
    framework = [p for p in framework_sources(args) if p.name != "system_setup.cc"]
    kernels = args.work / "src/tflm/tensorflow/lite/micro/kernels"
    shared = [kernels / f"{name}.cc" for name in KERNEL_SHARED]
    objdir = args.work / "obj-cortex-m7"
    fw_objs = compile_all(framework + shared, flags, objdir, args.jobs)
    files = sorted({f for names in KERNEL_FILES.values() for f in names})
    kernel_objs = dict(zip(files, compile_all([kernels / f"{f}.cc" for f in files], flags, objdir, args.jobs)))
    return {"target": " ".join(CORTEX_M[1:]), "flags": ["-Os", "-ffunction-sections",
                                                                          "-fdata-sections", "-DNDEBUG",
                                                                          "-DTF_LITE_STRIP_ERROR_STRINGS", *DEFINES],
            "framework_bytes": sum(section_bytes(o) for o in fw_objs),
            "framework_files": {Path(s).name: section_bytes(o) for s, o in zip(framework + shared, fw_objs)},
            "kernel_file_bytes": {f: section_bytes(o) for f, o in kernel_objs.items()},
            "operator_files": KERNEL_FILES}


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
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    steps = ("prepare", "arena", "structs", "codesize") if args.step == "all" else (args.step,)
    for step in steps:
        if step == "prepare":
            results["sources"] = prepare(args)
        elif step == "arena":
            results.setdefault("arena", {}).update(arena(args, results.get("sources", {})))
        elif step == "structs":
            results["cortex_m7_structs"] = structs(args)
        else:
            results["cortex_m7_code"] = codesize(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

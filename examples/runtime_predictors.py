"""Which analytic cost predicts measured latency, runtime by runtime, and what int8 buys.

    mnetcost bench -v all -a 0.25,0.5,1 -d 1,2 --runtime all --out latency.json
    python examples/runtime_predictors.py latency.json

For every runtime in a `mnetcost bench --runtime ...` file: the Spearman rank correlation of the
measured time (batch-1 latency: median and 10th percentile, and ms per image at the larger
batch) with Mult-Adds, parameters, peak activation bytes and weight bytes (the analytic figures
the bench file carries), over all its configurations. Then the time of each ONNX Runtime flavour relative to eager PyTorch (and of
int8 relative to fp32), as the median and range over configurations. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

PREDICTORS = ("mult_adds", "params", "peak_activation_bytes", "weight_bytes")
TIMES = {"latency_ms": "batch 1 latency", "latency_ms_p10": "batch 1, 10th pct",
         "per_image_ms": "per image at batch N"}


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            result[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rho: the Pearson correlation of the ranks (ties averaged)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("spearman needs two equally long lists of at least 2 values")
    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / (sxx * syy) ** 0.5 if sxx and syy else float("nan")


def times(row: dict) -> dict:
    out = {"latency_ms": row["latency_ms"]}
    if row.get("latency_ms_p10") is not None:  # the fast passes: less of a busy machine's interruptions
        out["latency_ms_p10"] = row["latency_ms_p10"]
    if row.get("images_per_s"):
        out["per_image_ms"] = 1000 / row["images_per_s"]
    return out


def analyse(bench: dict) -> dict:
    rows = bench["results"]
    runtimes = list(dict.fromkeys(r.get("runtime", "torch") for r in rows))
    correlations = {}
    for runtime in runtimes:
        mine = [r for r in rows if r.get("runtime", "torch") == runtime]
        correlations[runtime] = {
            time: {p: spearman([r[p] for r in mine], [times(r)[time] for r in mine])
                   for p in PREDICTORS if all(r.get(p) is not None for r in mine)}
            for time in TIMES if all(time in times(r) for r in mine)}
    key = lambda r: (r["variant"], r["alpha"], r["delta"], r["classes"], r["resolution"])  # noqa: E731
    by_runtime = {runtime: {key(r): times(r) for r in rows if r.get("runtime", "torch") == runtime}
                  for runtime in runtimes}
    speedups = {}
    pairs = (("torch", "onnxruntime"), ("torch", "onnxruntime-int8"), ("onnxruntime", "onnxruntime-int8"))
    for slower, faster in pairs:
        if slower in by_runtime and faster in by_runtime:
            for time in TIMES:
                ratios = [by_runtime[slower][k][time] / by_runtime[faster][k][time]
                          for k in by_runtime[slower] if k in by_runtime[faster]
                          and time in by_runtime[slower][k] and time in by_runtime[faster][k]]
                if ratios:
                    speedups[(slower, faster, time)] = (statistics.median(ratios), min(ratios), max(ratios))
    return {"runtimes": runtimes, "configurations": len(by_runtime[runtimes[0]]), "spearman": correlations,
            "speedups": speedups}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", type=Path, help="a `mnetcost bench --runtime ... --out FILE` file")
    args = parser.parse_args(argv)
    bench = json.loads(args.bench.read_text())
    result = analyse(bench)
    print(f"{result['configurations']} configurations, {bench.get('threads')} thread(s), batch N = "
          f"{bench.get('batch_size')}; Spearman rank correlation of time with:")
    print(f"  {'runtime':<18}{'time':<22}" + "".join(f"{p:>23}" for p in PREDICTORS))
    for runtime, per_time in result["spearman"].items():
        for time, values in per_time.items():
            print(f"  {runtime:<18}{TIMES[time]:<22}" + "".join(f"{values.get(p, float('nan')):>23.2f}"
                                                                 for p in PREDICTORS))
    print("time ratio (slower / faster runtime): median [min, max] over configurations")
    for (slower, faster, time), (median, low, high) in result["speedups"].items():
        print(f"  {slower} / {faster}, {TIMES[time]}: {median:.2f}x [{low:.2f}, {high:.2f}]")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Copy a grid's results (never checkpoints or data) into this folder and rebuild the report and figure.
#   usage: results/cifar10-repro/collect.sh GRID_OUT      (the OUT given to run.sh)
set -eu
GRID=${1:?grid folder}
HERE=$(cd "$(dirname "$0")" && pwd)
for run in "$GRID"/*/*/; do
  [ -f "$run/config.json" ] || continue
  dest="$HERE/runs/$(basename "$(dirname "$run")")/$(basename "$run")"
  mkdir -p "$dest"
  for f in config.json metrics.jsonl summary.json; do [ -f "$run/$f" ] && cp "$run/$f" "$dest/"; done
done
mkdir -p "$HERE/logs" && cp -r "$GRID"/logs/. "$HERE/logs/"
mnetcost report "$HERE/runs" --format markdown > "$HERE/report.md"
mnetcost report "$HERE/runs" --format json > "$HERE/report.json"
mnetcost plot --runs "$HERE/runs" --out "$HERE/pareto_cifar10.png" --format json > "$HERE/pareto_cifar10.json"

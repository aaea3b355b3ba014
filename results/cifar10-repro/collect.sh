#!/usr/bin/env bash
# Copy a grid's results (never checkpoints or data) into this folder and rebuild the report and figure.
#   usage: results/cifar10-repro/collect.sh GRID_OUT [MIN_EPOCHS]     (the OUT given to run.sh)
# Runs with fewer than MIN_EPOCHS finished epochs (default 5) are left out: their first epochs say
# nothing about the paper's claims. Unfinished runs that are copied are marked so by the report.
set -eu
GRID=${1:?grid folder}; MIN_EPOCHS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
for run in "$GRID"/*/*/; do
  [ -f "$run/config.json" ] || continue
  [ "$(grep -c . "$run/metrics.jsonl" 2>/dev/null || echo 0)" -ge "$MIN_EPOCHS" ] || continue
  dest="$HERE/runs/$(basename "$(dirname "$run")")/$(basename "$run")"
  mkdir -p "$dest"
  for f in config.json metrics.jsonl summary.json; do [ -f "$run/$f" ] && cp "$run/$f" "$dest/"; done
done
mkdir -p "$HERE/logs" && cp -r "$GRID"/logs/. "$HERE/logs/"
cd "$HERE"
mnetcost report runs --format markdown > report.md
mnetcost report runs --format json > report.json
mnetcost plot --runs runs --out pareto_cifar10.png --format json > pareto_cifar10.json

#!/usr/bin/env bash
# Copy the grid's results (never checkpoints or data) into this folder and rebuild the report and the two
# figures that set the MobileNetV2 runs beside the committed reproduction's MobileNet hybrids
# (results/cifar10-repro/runs): accuracy against Mult-Adds and against TensorFlow Lite Micro's arena.
#   usage: results/mobilenet-v2-cifar10/collect.sh GRID_OUT [MIN_EPOCHS]     (the OUT given to run.sh)
# Runs with fewer than MIN_EPOCHS finished epochs (default 5) are left out; unfinished runs that are copied
# are marked so by the report and labelled with their epochs on the figures.
set -eu
GRID=${1:?grid folder}; MIN_EPOCHS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/../copy_records.sh" "$GRID" "$HERE" "$MIN_EPOCHS"
cd "$HERE/../.."
R=results/mobilenet-v2-cifar10
V1=results/cifar10-repro/runs
mnetcost report $R/runs $V1 --format markdown > $R/report.md
mnetcost report $R/runs $V1 --format json > $R/report.json
mnetcost plot --runs $V1 --runs $R/runs --no-paper --out $R/pareto_mult_adds.png --format json > $R/pareto_mult_adds.json
mnetcost plot --runs $V1 --runs $R/runs --no-paper --x arena --out $R/pareto_arena.png --format json > $R/pareto_arena.json

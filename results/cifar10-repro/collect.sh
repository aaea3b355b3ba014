#!/usr/bin/env bash
# Copy a grid's results (never checkpoints or data) into this folder and rebuild the report and figure.
#   usage: results/cifar10-repro/collect.sh GRID_OUT [MIN_EPOCHS]     (the OUT given to run.sh)
# Runs with fewer than MIN_EPOCHS finished epochs (default 5) are left out: their first epochs say
# nothing about the paper's claims. Unfinished runs that are copied are marked so by the report, and a
# seed behind its configuration's other seeds is shown apart, not pooled into their mean.
# The report and figure are made from the repository's root, exactly as tests/test_reproduction.py
# remakes them to check that the committed files are what the committed runs give.
set -eu
GRID=${1:?grid folder}; MIN_EPOCHS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/../copy_records.sh" "$GRID" "$HERE" "$MIN_EPOCHS"
cd "$HERE/../.."
R=results/cifar10-repro
mnetcost report $R/runs --format markdown > $R/report.md
mnetcost report $R/runs --format json > $R/report.json
mnetcost plot --runs $R/runs --out $R/pareto_cifar10.png --format json > $R/pareto_cifar10.json

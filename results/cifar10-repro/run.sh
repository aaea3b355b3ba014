#!/usr/bin/env bash
# The full-CIFAR-10 reproduction (Tables 4-6, CIFAR-10, alpha=0.25 rows and the
# alpha=1 delta=1 baseline), exactly as it was run for results/cifar10-repro/.
#   usage: results/cifar10-repro/run.sh DATASET OUT [THREADS]
#   DATASET: cifar10 (official download) or a path such as cifar10-jpeg.tar.xz; OUT: the grid folder.
# Idempotent: run it again after an interruption and it resumes; start it twice (two workers, e.g.
# one per core) and the run locks keep them from training the same run. 30 epochs: see docs/training.md.
set -u
DATA=${1:?dataset}; OUT=${2:?out folder}; THREADS=${3:-1}
common=(--dataset "$DATA" --epochs 30 --threads "$THREADS" --out "$OUT")
status=0
# In order of what the paper's claims need most: the delta=2 trio, the baseline, delta=4, a 2nd seed.
mnetcost grid --paper-tables 4,5,6 --alpha 0.25 --delta 2 --seeds 0 "${common[@]}" || status=1
mnetcost grid --variant base --alpha 1 --delta 1 --seeds 0 "${common[@]}" || status=1
mnetcost grid --paper-tables 4,5,6 --alpha 0.25 --delta 4 --seeds 0 "${common[@]}" || status=1
mnetcost grid --paper-tables 4,5,6 --alpha 0.25 --delta 2 --seeds 1 "${common[@]}" || status=1
exit $status

#!/usr/bin/env bash
# What the paper's ideas do to MobileNetV2: mobilenet_v2 at alpha = 0.35 with its strided convs (base), with
# 3x3/2 max pooling (_mp3) and with fractional max pooling (_fmp) in their place, on full CIFAR-10, one seed
# each, with the committed reproduction's recipe (30 epochs; see ../cifar10-repro/run.sh), exactly as run for
# results/mobilenet-v2-cifar10/.
#   usage: results/mobilenet-v2-cifar10/run.sh DATASET OUT [THREADS]
#   DATASET: cifar10 (official download) or a path such as cifar10-jpeg.tar.xz; OUT: the grid folder.
# Idempotent: run it again after an interruption and it resumes; start it twice with SHARD=0/2 and SHARD=1/2
# (one worker per core) to split the three runs.
set -u
DATA=${1:?dataset}; OUT=${2:?out folder}; THREADS=${3:-1}
exec mnetcost grid --variant mobilenet_v2,mobilenet_v2_mp3,mobilenet_v2_fmp --alpha 0.35 --delta 1 --seeds 0 \
  --dataset "$DATA" --epochs 30 --threads "$THREADS" --out "$OUT" --shard "${SHARD:-0/1}"

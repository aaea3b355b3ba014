#!/usr/bin/env bash
# Copy a grid's run records into a results folder: each run's config.json, metrics.jsonl and summary.json
# (never checkpoints or data) to DEST/runs/<dataset>/<run>/, and the grid's logs to DEST/logs/.
#   usage: results/copy_records.sh GRID_OUT DEST [MIN_EPOCHS]
# Runs with fewer than MIN_EPOCHS finished epochs (default 5) are left out.
set -eu
GRID=${1:?grid folder}; DEST=${2:?results folder}; MIN_EPOCHS=${3:-5}
for run in "$GRID"/*/*/; do
  [ -f "$run/config.json" ] || continue
  [ "$(grep -c . "$run/metrics.jsonl" 2>/dev/null || echo 0)" -ge "$MIN_EPOCHS" ] || continue
  dest="$DEST/runs/$(basename "$(dirname "$run")")/$(basename "$run")"
  mkdir -p "$dest"
  for f in config.json metrics.jsonl summary.json; do [ -f "$run/$f" ] && cp "$run/$f" "$dest/"; done
done
mkdir -p "$DEST/logs" && cp -r "$GRID"/logs/. "$DEST/logs/"

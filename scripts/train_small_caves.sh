#!/usr/bin/env bash
# Train the three small CaVEs (dual, explicit, implicit learning) one after the other on one CPU thread,
# each resuming where it stopped (the trainer continues from its newest checkpoint), each capped at
# MINUTES of wall time (default 25). Run from the repository root after building the data set:
#   apt-get update && python scripts/make_cave_trainset.py --out data/cave-train
#   nice -n 10 scripts/train_small_caves.sh > train.log 2>&1 &
# Then scripts/finish_small_caves.py evaluates the runs and writes the shipped weights and their figures.
set -u
MINUTES=${MINUTES:-25}
PYTHON=${PYTHON:-python}
for mode in dual explicit implicit; do
  config=configs/train/cave-small-$mode.yaml
  echo "$(date -u +%FT%TZ) start $config"
  timeout --signal=INT --kill-after=60 "$((MINUTES * 60))" "$PYTHON" -m bench train-cave --config "$config" --quiet
  status=$?  # 124: stopped at the time cap; its newest checkpoint holds the run so far
  echo "$(date -u +%FT%TZ) end $config (exit $status)"
done

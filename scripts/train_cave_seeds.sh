#!/usr/bin/env bash
# Table 4 at small scale, with seeds: trains the small CaVE by dual, explicit and implicit learning
# (configs/train/cave-seeds-{dual,explicit,implicit}.yaml: same photos, steps and schedule) at seeds 0, 1, 2,
# one run after the other (seed by seed, so that finished seeds form complete triples early), on one thread.
# Everything lives under ROOT (default data/cave-seeds): the photos in ROOT/cave-train (build them first) and
# run r in ROOT/runs/cave-seeds-MODE-sSEED. Rerunning the script continues: a finished run is skipped (the
# trainer finds its last step done) and a stopped one resumes from its newest checkpoint (every 100 steps).
#   python scripts/make_cave_trainset.py --out data/cave-seeds/cave-train
#   nohup nice -n 19 scripts/train_cave_seeds.sh > data/cave-seeds/train.log 2>&1 &
# Then: python scripts/analyse_cave_seeds.py --root data/cave-seeds
set -u
ROOT=${ROOT:-data/cave-seeds}
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-"0 1 2"}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$ROOT/runs"
for seed in $SEEDS; do
  for mode in dual explicit implicit; do
    out="$ROOT/runs/cave-seeds-$mode-s$seed"
    if [ -f "$out/done" ]; then continue; fi
    echo "$(date -u +%FT%TZ) start $mode seed $seed -> $out"
    "$PYTHON" -m bench train-cave --config "configs/train/cave-seeds-$mode.yaml" --quiet --output-dir "$out" \
      --set "train.seed=$seed" --set "data.train=[$ROOT/cave-train/train]" --set "val.folder=$ROOT/cave-train/heldout" \
      > "$out.json" 2> "$out.err"
    status=$?
    if [ "$status" -eq 0 ]; then touch "$out/done"; fi
    echo "$(date -u +%FT%TZ) end $mode seed $seed (exit $status)"
  done
done

"""CODiff's commands (`train-cave`, `train-codiff`, `estimate-qf`, `cave-analysis`), registered with the CLI through the entry-point group `codiff_bench.commands`."""

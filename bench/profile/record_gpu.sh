#!/usr/bin/env bash
# The GPU record of Table 2: CODiff at 1024^2 and 512^2, fp16 and bf16, LoRA unmerged and merged (and the
# release's latent tiling at 1024^2), CUDA-event latency, max allocated memory and the MAC-bound floor ratio.
# Writes runs/profile-gpu-1024/ and runs/profile-gpu-512/; profile.json records the GPU's name.
# Extra arguments pass through (e.g. --peak-tflops 150 for a GPU missing from bench/profile/peaks.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CODIFF_BENCH:-codiff-bench}
"$BIN" profile --methods codiff,codiff-merged,codiff-tiled,codiff-merged-tiled --size 1024 --device cuda \
    --dtype fp16,bf16 --runs 20 --warmup 3 --out runs/profile-gpu-1024 --quiet "$@"
"$BIN" profile --methods codiff,codiff-merged --size 512 --device cuda --dtype fp16,bf16 --runs 20 --warmup 3 \
    --out runs/profile-gpu-512 --quiet "$@"

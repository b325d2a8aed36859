"""Training of CODiff's two stages on one shared loop.

`config` (dataclass configs from YAML), `data` (pairs synthesised on the fly, validation pairs), `trainer`
(the loop: accelerate, logging, validation, checkpoints, exact resume), `checkpointing` (atomic checkpoint
folders), `logs` (CSV + TensorBoard), `losses`, `metrics` (PSNR, PSNR-B), `distributed` (global BatchNorm),
`stage1` (CaVE), `stage2` (the one-step generator with LoRA and the latent GAN), `cli` (the commands' shared
arguments). Submodules import torch; import them where used.
"""

"""CODiff (compression-aware one-step diffusion) and its CaVE compression-aware visual embedder.

Models: `cave` (the CaVE network), `generator` (the one-step diffusion generator), `discriminator`, `sd`
(Stable Diffusion 2.1 components), `pipeline` (inference at any size), `tiling`, `colorfix`. Formats:
`checkpoint` (official and project checkpoints), `convert`. Harness parts: `options` (typed options),
`method` (the methods `codiff` and `cave`), `cave_small/` (the shipped small CaVEs and `cave-small`),
`analysis/` (the `cave` post-run analysis), `commands/` (train-cave, train-codiff, estimate-qf, cave-analysis),
`training/` (both stages), `benchmark` (the CPU benchmark), `precision` (reduced-precision error), `standins`
(small stand-in weights for tests). Submodules are imported on use (torch and diffusers are heavy).
"""

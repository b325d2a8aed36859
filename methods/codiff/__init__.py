"""CODiff (compression-aware one-step diffusion) and its CaVE compression-aware visual embedder.

`cave` holds the CaVE network, `generator` the one-step diffusion generator, `checkpoint` the official and
project checkpoint formats, `tiling` memory-bounded tiled inference, `colorfix` the colour corrections and
`method` the harness methods `codiff` and `cave`. Submodules are imported on use (torch and diffusers are
heavy).
"""

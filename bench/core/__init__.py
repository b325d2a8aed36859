"""The base layer: what every other part of the project builds on, importing nothing above it.

`errors` (the one user-error base), `config` (the typed config system), `registry` (the generic registry),
`atomic` (atomic writes), `imageio` (image reading and writing), `protocol` (the JPEG protocol), `paths`
(safe file names), `weights` (weight-file descriptors and hashes), `lock` (the run-folder lock), `device`
(the device check), `resources` (files shipped in the package), `paper` (the paper's reported tables).
"""

"""CODiff's analyses of its CaVE embedder: t-SNE, QF-estimate error and silhouettes (paper Figs. 2, 4 and 7)."""

"""Reports rendered from stored run results only: tables, plots, t-SNE and the HTML page."""

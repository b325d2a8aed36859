"""Reports rendered from stored run results only: tables, plots, analyses' figures and the HTML page.

Reports read a run folder through the results store (read-only) and the base layer; they import no method and
no run engine, and take every label and direction from what the run recorded.
"""

from __future__ import annotations

from pathlib import Path


def render_report(run_dir: str | Path, *, reference: str | None = None, images: list[str] | None = None,
                  single_file: bool = False) -> Path:
    """Render `<run_dir>/report/index.html` from the run's stored results; see `reports.html.render_report`."""
    from reports.html import render_report as render

    return render(run_dir, reference=reference, images=images, single_file=single_file)


__all__ = ["render_report"]

"""One footer for every figure: the models that made it, the run seed and a short note.

A figure read on its own (in a paper draft, a chat, a slide) must still say which models made
it: a plot from the tiny embedded model looks like any other. Every stage's plots call
`add_footer` and write through `save_figure`, which also puts the title and the models into
the PNG's metadata (text chunks "Title" and "Models").
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The bottom share of the figure its footer needs: pass `rect=(0, FOOTER_SPACE, 1, 1)` to
# tight_layout so the axes stay clear of it.
FOOTER_SPACE = 0.04


def footer_text(models: Sequence[str], *, seed: int | None = None, note: str | None = None) -> str:
    """'models: a, b | seed: 0 | note' ('models: none' for a figure made without a model)."""
    parts = [f"models: {', '.join(dict.fromkeys(models)) or 'none'}"]
    if seed is not None:
        parts.append(f"seed: {seed}")
    if note:
        parts.append(note)
    return " | ".join(parts)


def add_footer(
    figure: Figure,
    *,
    models: Sequence[str],
    seed: int | None = None,
    note: str | None = None,
) -> None:
    """Write the footer along the bottom left of the figure, wrapped to its width."""
    text = footer_text(models, seed=seed, note=note)
    figure.text(
        0.01,
        0.005,
        textwrap.fill(text, width=int(figure.get_figwidth() * 15)),
        fontsize=7,
        color="0.35",
        ha="left",
        va="bottom",
    )


def save_figure(
    figure: Figure, path: Path, *, title: str, models: Sequence[str], dpi: int = 120
) -> None:
    """Write the figure as PNG with its title and models in the metadata, then close it."""
    import matplotlib.pyplot as plt

    try:
        figure.savefig(
            path,
            format="png",
            dpi=dpi,
            metadata={
                "Title": title,
                "Software": "persona-testbed",
                "Models": ", ".join(dict.fromkeys(models)) or "none",
            },
        )
    finally:
        plt.close(figure)

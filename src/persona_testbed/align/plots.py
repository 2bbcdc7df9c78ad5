"""The align figure: accuracy per method and test split with 95% CIs (matplotlib, Agg; imported
only when the figure is drawn)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from persona_testbed.figures import FOOTER_SPACE, add_footer, save_figure


def accuracy_figure(board: pl.DataFrame, path: Path, *, embedder: str, seed: int) -> None:
    """Grouped bars: one group per method, one bar per test split, chance at 0.5."""
    methods = list(dict.fromkeys(board["method"].to_list()))
    splits = list(dict.fromkeys(board["split"].to_list()))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.5 * len(methods) * max(1, len(splits))), 4.5))
    width = 0.8 / max(1, len(splits))
    x = np.arange(len(methods))
    for i, split in enumerate(splits):
        rows = {
            r["method"]: r for r in board.filter(pl.col("split") == split).iter_rows(named=True)
        }
        values, below, above = [], [], []
        for method in methods:
            row = rows.get(method, {})
            value = row.get("accuracy")
            low, high = row.get("ci_low"), row.get("ci_high")
            values.append(0.0 if value is None else value)
            below.append(0.0 if value is None or low is None else value - low)
            above.append(0.0 if value is None or high is None else high - value)
        positions = x + (i - (len(splits) - 1) / 2) * width
        axes.bar(positions, values, width, label=split, yerr=[below, above], capsize=4)
    axes.axhline(0.5, color="0.4", linestyle="--", linewidth=1, label="chance")
    axes.set_xticks(x, methods, rotation=15, ha="right")
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("pairwise accuracy (both answer orders)")
    axes.set_title("Preference prediction per persona: accuracy by method and split")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout(rect=(0, FOOTER_SPACE, 1, 1))
    note = f"embedder: {embedder} | 95% CIs: cluster bootstrap over personas x prompts"
    add_footer(figure, models=[], seed=seed, note=note)
    save_figure(figure, path, title=axes.get_title(), models=[])

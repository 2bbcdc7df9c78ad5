"""The topic distribution figure (the paper's Fig. 3): prompts per topic, by split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display

import matplotlib.pyplot as plt
import polars as pl

from persona_testbed.figures import FOOTER_SPACE, add_footer, save_figure


def plot_topic_distribution(
    kept: pl.DataFrame,
    path: Path,
    title: str,
    *,
    models: Sequence[str] = (),
    seed: int | None = None,
) -> None:
    """Horizontal bars of kept prompts per topic, stacked train / held-out, largest on top."""
    counts = (
        kept.group_by("topic")
        .agg(
            (pl.col("split") == "train").sum().alias("train"),
            (pl.col("split") == "heldout").sum().alias("heldout"),
            pl.len().alias("n"),
        )
        .sort(["n", "topic"], descending=[False, True])
    )
    topics = counts["topic"].to_list()
    height = max(3.0, 0.32 * len(topics) + 1.2)
    figure, axes = plt.subplots(figsize=(8, height))
    try:
        train = counts["train"].to_list()
        heldout = counts["heldout"].to_list()
        axes.barh(topics, train, color="#4C72B0", label="train")
        axes.barh(topics, heldout, left=train, color="#DD8452", label="held-out")
        total = max(1, len(kept))
        for y, n in enumerate(counts["n"].to_list()):
            axes.text(n, y, f" {n} ({100 * n / total:.1f}%)", va="center", fontsize=8)
        axes.set_xlabel("prompts")
        axes.set_title(title, fontsize=10)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        axes.set_xlim(0, max(counts["n"].to_list() or [1]) * 1.25)
        figure.tight_layout(rect=(0, FOOTER_SPACE, 1, 1))
        add_footer(figure, models=models, seed=seed)
        save_figure(figure, path, title=title, models=models)
    finally:
        plt.close(figure)

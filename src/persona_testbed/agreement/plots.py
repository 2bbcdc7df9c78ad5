"""Figures (matplotlib, Agg): the LOO box plot (Fig. 5), the kappa matrix (Fig. 6/8) and the
per-persona kappa histograms (Fig. 7/9). Every figure names the models that made it and the
seed in the shared footer (persona_testbed.figures) and in the PNG's metadata."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from persona_testbed.figures import add_footer, save_figure
from persona_testbed.seeding import child_rng

KAPPA_LIMITS = (-1.05, 1.05)


def short_name(spec: str) -> str:
    """A model spec short enough for an axis label: gguf paths keep their file name."""
    kind, _, rest = spec.partition(":")
    if kind == "gguf" and rest:
        return f"gguf:{Path(rest).name}"
    return spec


def _save(figure: Figure, path: Path, title: str, models: Sequence[str], seed: int | None) -> None:
    add_footer(figure, models=models, seed=seed)
    save_figure(figure, path, title=title, models=models)


def loo_boxplot(
    kappas: pl.DataFrame,
    table: pl.DataFrame,
    path: Path,
    *,
    models: Sequence[str],
    note: str,
    seed: int | None = None,
) -> None:
    """One panel per annotator model: a box of pair kappas per attribute (undefined ones left
    out), most influential (influence_rank 1, lowest mean PABAK) at the top, with the
    individual pairs drawn over it."""
    annotators = table["annotator"].unique(maintain_order=True).to_list()
    attributes = table["attribute"].n_unique()
    height = max(3.0, 0.42 * attributes + 1.6)
    width = max(8.0, 6.0 * len(annotators))
    figure, axes = plt.subplots(1, len(annotators), figsize=(width, height), squeeze=False)
    for axis, annotator in zip(axes[0], annotators, strict=True):
        ranked = table.filter(pl.col("annotator") == annotator).sort("influence_rank")
        names = ranked["attribute"].to_list()[::-1]  # barh draws bottom-up
        data = []
        for name in names:
            values = (
                kappas.filter(
                    (pl.col("annotator") == annotator)
                    & (pl.col("attribute") == name)
                    & ~pl.col("degenerate")
                )["kappa"]
                .fill_nan(None)
                .drop_nulls()
                .to_numpy()
            )
            data.append(values)
        positions = np.arange(1, len(names) + 1)
        axis.boxplot(
            [d if d.size else np.array([np.nan]) for d in data],
            positions=positions,
            orientation="horizontal",
            widths=0.6,
            showfliers=False,
        )
        jitter = child_rng(0, "plot jitter")  # fixed: only spreads overlapping dots
        for position, values in zip(positions, data, strict=True):
            offsets = jitter.uniform(-0.15, 0.15, size=values.size)
            axis.scatter(values, position + offsets, s=9, alpha=0.5, color="tab:blue")
        axis.set_yticks(positions, names)
        axis.set_xlim(*KAPPA_LIMITS)
        axis.axvline(0.0, color="0.8", lw=0.8, zorder=0)
        axis.set_xlabel("Cohen's kappa, annotator with vs without the attribute")
        axis.set_title(f"annotator: {short_name(annotator)}", fontsize=9)
    wrapped = textwrap.fill(note, width=int(width * 13))
    figure.suptitle(
        "Leave-one-out influence (lower = more influence; ranked by PABAK, undefined kappa "
        f"left out)\n{wrapped}",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    _save(figure, path, "Leave-one-out attribute influence", models, seed)


def kappa_heatmap(
    names: Sequence[str],
    matrix: np.ndarray,
    path: Path,
    *,
    models: Sequence[str],
    title: str,
    intervals: dict[tuple[str, str], tuple[float | None, float | None]] | None = None,
    seed: int | None = None,
) -> None:
    """Upper triangle of the pooled kappa matrix (the lower one is masked, as in the paper),
    each cell annotated with kappa and its 95% CI."""
    n = len(names)
    masked = np.ma.masked_array(matrix, mask=np.tril(np.ones((n, n), dtype=bool), k=-1))
    size = max(5.5, 1.25 * n + 2.5)
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(masked, vmin=-1.0, vmax=1.0, cmap="RdYlGn")
    labels = [short_name(name) for name in names]
    axis.set_xticks(range(n), labels, rotation=35, ha="right", fontsize=8)
    axis.set_yticks(range(n), labels, fontsize=8)
    for i in range(n):
        for j in range(i, n):
            value = matrix[i, j]
            text = "n/a" if math.isnan(value) else f"{value:.2f}"
            interval = (intervals or {}).get((names[i], names[j]))
            if interval and interval[0] is not None and interval[1] is not None:
                text += f"\n[{interval[0]:.2f}, {interval[1]:.2f}]"
            axis.text(j, i, text, ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axis, label="Cohen's kappa", shrink=0.8)
    axis.set_title(textwrap.fill(title, width=int(size * 9)), fontsize=10)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    _save(figure, path, title, models, seed)


def kappa_histograms(
    panels: Sequence[tuple[str, Sequence[float]]],
    path: Path,
    *,
    models: Sequence[str],
    title: str,
    seed: int | None = None,
) -> None:
    """One histogram of per-persona kappa per panel (an annotator pair, or the human
    baseline), on a shared kappa axis."""
    count = max(1, len(panels))
    columns = min(3, count)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.0 * rows + 0.6), squeeze=False
    )
    bins = np.linspace(-1.0, 1.0, 21)
    for axis, (label, values) in zip(axes.flat, panels, strict=False):
        finite = np.asarray([v for v in values if v is not None and not math.isnan(v)])
        axis.hist(finite, bins=bins, color="tab:blue", alpha=0.8)
        mean = f"mean {finite.mean():.2f}, " if finite.size else ""
        axis.set_title(f"{label}\n({mean}n={finite.size})", fontsize=8)
        axis.set_xlim(*KAPPA_LIMITS)
        axis.set_xlabel("per-persona Cohen's kappa", fontsize=8)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    _save(figure, path, title, models, seed)

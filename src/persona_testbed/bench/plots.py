"""Figures of the bench (matplotlib, Agg): accuracy by method (paper Fig. 10), pass@k (Fig. 12),
summary attribute drops (Fig. 11), slices and leave-one-attribute-out. Every figure names the
models under test and the judge in its footer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from persona_testbed.bench.metrics import MethodMetrics
from persona_testbed.estimation import Floats
from persona_testbed.figures import FOOTER_SPACE, add_footer, save_figure

MAX_SLICE_VALUES = 8


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _finish(
    figure: Figure,
    models: Sequence[str],
    judge: str,
    path: Path,
    rect: tuple[float, float, float, float] = (0, FOOTER_SPACE, 1, 1),
    *,
    seed: int | None = None,
) -> None:
    """Lay the figure out above its footer and write it."""
    figure.tight_layout(rect=rect)
    note = f"judge: {judge} | 95% CIs: cluster bootstrap over personas x questions"
    add_footer(figure, models=models, seed=seed, note=note)
    title = figure.axes[0].get_title() if figure.axes else path.stem
    save_figure(figure, path, title=title, models=[*models, judge])


def _errors(
    values: Sequence[float | None], low: Sequence[float | None], high: Sequence[float | None]
) -> Floats:
    """Error-bar lengths below and above each value (0 where there is no CI)."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    lo = np.array([np.nan if x is None else x for x in low], dtype=float)
    hi = np.array([np.nan if x is None else x for x in high], dtype=float)
    lengths: Floats = np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0)
    return lengths


def accuracy_figure(
    metrics: Sequence[MethodMetrics],
    methods: Sequence[str],
    judge: str,
    path: Path,
    *,
    seed: int | None = None,
) -> None:
    models = list(dict.fromkeys(m.model for m in metrics))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(methods) * max(1, len(models))), 4.5))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(methods))
    for i, model in enumerate(models):
        rows = {m.method: m for m in metrics if m.model == model}
        values = [rows[m].accuracy.value if m in rows else None for m in methods]
        low = [rows[m].accuracy.low if m in rows else None for m in methods]
        high = [rows[m].accuracy.high if m in rows else None for m in methods]
        heights = [0.0 if v is None else v for v in values]
        positions = x + (i - (len(models) - 1) / 2) * width
        axes.bar(positions, heights, width, label=model, yerr=_errors(values, low, high), capsize=4)
        for position, method in zip(positions, methods, strict=True):
            if method in rows:
                label = f"n={rows[method].accuracy.trials}"
                if rows[method].verdict_errors:
                    label += f"\n{rows[method].verdict_errors} err"
                axes.text(position, 0.01, label, ha="center", va="bottom", fontsize=7)
    axes.set_xticks(x, list(methods))
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("accuracy (share needing no revision)")
    axes.set_title("PERSONA Bench: accuracy by method")
    axes.legend(fontsize=8)
    _finish(figure, models, judge, path, seed=seed)


def pass_at_k_figure(
    metrics: Sequence[MethodMetrics], judge: str, path: Path, *, seed: int | None = None
) -> None:
    models = list(dict.fromkeys(m.model for m in metrics))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in metrics:
        ks = sorted(k for k, e in row.pass_at.items() if e.value is not None)
        if not ks:
            continue
        values = [row.pass_at[k].value or 0.0 for k in ks]
        low = [_or_nan(row.pass_at[k].low) for k in ks]
        high = [_or_nan(row.pass_at[k].high) for k in ks]
        label = f"{row.method}" if len(models) == 1 else f"{row.model} / {row.method}"
        (line,) = axes.plot(ks, values, marker="o", label=label)
        axes.fill_between(ks, low, high, color=line.get_color(), alpha=0.15)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("k (samples per pair)")
    axes.set_ylabel("pass@k")
    axes.set_ylim(0, 1.05)
    axes.set_title("PERSONA Bench: pass@k (unbiased estimator)")
    axes.legend(fontsize=8)
    _finish(figure, models, judge, path, seed=seed)


def _horizontal_bars(
    axes: Axes,
    labels: Sequence[str],
    series: Sequence[tuple[str, pl.DataFrame]],
    value: str,
    low: str,
    high: str,
) -> None:
    y = np.arange(len(labels))
    height = 0.8 / max(1, len(series))
    for i, (name, frame) in enumerate(series):
        by_label = {row["label"]: row for row in frame.iter_rows(named=True)}
        values = [by_label[lab][value] if lab in by_label else None for lab in labels]
        lows = [by_label[lab][low] if lab in by_label else None for lab in labels]
        highs = [by_label[lab][high] if lab in by_label else None for lab in labels]
        widths = [0.0 if v is None else v for v in values]
        positions = y + (i - (len(series) - 1) / 2) * height
        axes.barh(
            positions, widths, height, xerr=_errors(values, lows, highs), capsize=2, label=name
        )
        for position, v in zip(positions, values, strict=True):
            if v is not None:  # the number, so a zero-length bar still reads as 0
                axes.text(0.005, position, f"{v:.2f}", va="center", fontsize=5, color="0.15")
    axes.set_yticks(y, list(labels), fontsize=7)
    axes.invert_yaxis()


def _attribute_bars(
    frame: pl.DataFrame,
    order: Sequence[str],
    columns: tuple[str, str, str],
    *,
    min_height: float,
    bar_height: float,
) -> tuple[Figure, Axes, list[str]]:
    """One bar per attribute (in `order`) and model under test: the `columns` value with its
    CI (low, high); a legend when there are several models."""
    models = frame.get_column("model").unique(maintain_order=True).to_list()
    height = max(min_height, bar_height * len(order) * max(1, len(models)))
    figure, axes = plt.subplots(figsize=(8, height))
    series = [
        (model, frame.filter(pl.col("model") == model).rename({"attribute": "label"}))
        for model in models
    ]
    _horizontal_bars(axes, order, series, *columns)
    if len(models) > 1:
        axes.legend(fontsize=8)
    return figure, axes, models


def drops_figure(drops: pl.DataFrame, judge: str, path: Path, *, seed: int | None = None) -> None:
    # Ties (equal mean drop rates) keep the table's order: an unordered group_by made the
    # bars' order, and so the PNG, differ from run to run.
    order = (
        drops.group_by("attribute", maintain_order=True)
        .agg(pl.col("drop_rate").mean())
        .sort("drop_rate", descending=True, maintain_order=True)
        .get_column("attribute")
        .to_list()
    )
    figure, axes, models = _attribute_bars(
        drops, order, ("drop_rate", "ci_low", "ci_high"), min_height=4.0, bar_height=0.28
    )
    axes.set_xlim(0, 1.05)
    axes.set_xlabel("share of persona-summary summaries that drop the attribute")
    axes.set_title("Attributes the persona summary drops")
    _finish(figure, models, judge, path, rect=(0, 0.03, 1, 1), seed=seed)


def slices_figure(
    slices: pl.DataFrame,
    attributes: Sequence[str],
    judge: str,
    path: Path,
    *,
    seed: int | None = None,
) -> None:
    """One panel per slice attribute: accuracy per value (the most common values) per method."""
    models = slices.get_column("model").unique(maintain_order=True).to_list()
    panels = [a for a in attributes if slices.filter(pl.col("slice") == a).height]
    panels += [
        s
        for s in slices.get_column("slice").unique(maintain_order=True).to_list()
        if s not in attributes
    ]
    if not panels:
        panels = ["(no slices)"]
    columns = 2 if len(panels) > 1 else 1
    rows = (len(panels) + columns - 1) // columns
    figure, grid = plt.subplots(rows, columns, figsize=(7 * columns, 3.2 * rows), squeeze=False)
    for axes, panel in zip(grid.flat, panels, strict=False):
        frame = slices.filter(pl.col("slice") == panel)
        top = (
            frame.group_by("value")
            .agg(pl.col("pairs").max())
            .sort(["pairs", "value"], descending=[True, False])
            .head(MAX_SLICE_VALUES)
            .get_column("value")
            .to_list()
        )
        keys = frame.select("model", "method").unique(maintain_order=True).iter_rows()
        series = [
            (
                method if len(models) == 1 else f"{model} / {method}",
                frame.filter((pl.col("model") == model) & (pl.col("method") == method)).rename(
                    {"value": "label"}
                ),
            )
            for model, method in keys
        ]
        _horizontal_bars(axes, top, series, "accuracy", "ci_low", "ci_high")
        axes.set_xlim(0, 1.05)
        axes.set_title(panel, fontsize=9)
    for axes in list(grid.flat)[len(panels) :]:
        axes.axis("off")
    handles, labels = grid.flat[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="upper right", fontsize=7)
    figure.suptitle("PERSONA Bench: accuracy by persona slice", fontsize=11)
    _finish(figure, models, judge, path, rect=(0, 0.03, 0.85, 0.97), seed=seed)


def loo_figure(loo: pl.DataFrame, judge: str, path: Path, *, seed: int | None = None) -> None:
    order = loo.sort("delta", nulls_last=True).get_column("attribute").unique(maintain_order=True)
    figure, axes, models = _attribute_bars(
        loo,
        order.to_list(),
        ("delta", "delta_ci_low", "delta_ci_high"),
        min_height=3.0,
        bar_height=0.3,
    )
    axes.axvline(0.0, color="0.3", linewidth=0.8)
    axes.set_xlabel("accuracy change when the attribute is removed (persona method)")
    axes.set_title("Leave one attribute out")
    _finish(figure, models, judge, path, rect=(0, 0.03, 1, 1), seed=seed)

"""One PNG grid of side-by-side bar charts: personas vs census, per attribute (the paper's
Figures 2 and 13 in one picture)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from persona_testbed.contracts import CENSUS_ATTRIBUTES
from persona_testbed.figures import FOOTER_SPACE, add_footer, save_figure

MAX_BARS = 8
LABEL_CHARS = 34
# Three panels a row at 100 dpi: about 1,600 px wide, so the labels stay readable at normal
# zoom when the report fits the figure to a laptop screen (four at 72 dpi were not).
COLUMNS = 3
PANEL_INCHES = (5.4, 3.5)
DPI = 100
SERIES_STYLE: dict[str, tuple[str, str]] = {
    "personas": ("Personas", "#1f77b4"),
    "pums": ("Census (PUMS, PWGTP)", "#ff7f0e"),
    "raked": ("Census raked", "#2ca02c"),
    "target": ("Raking target", "#d62728"),
}


def _short(label: str) -> str:
    short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
    return short.replace("$", r"\$")  # a literal dollar, not matplotlib math mode


def plot_comparison(
    persona_shares: pl.DataFrame,
    reference: pl.DataFrame,
    path: Path,
    title: str,
    *,
    models: Sequence[str] = (),
    seed: int | None = None,
) -> None:
    """Write the grid to `path` (PNG). Each panel shows the attribute's largest categories (by
    census share) and pools the rest into "Other"."""
    rows = (len(CENSUS_ATTRIBUTES) + COLUMNS - 1) // COLUMNS
    width, height = PANEL_INCHES
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(width * COLUMNS, height * rows))
    flat = np.asarray(axes).reshape(-1)
    census_refs = [r for r in ("raked", "pums") if r in set(reference.get_column("reference"))]
    for axis, attribute in zip(flat, CENSUS_ATTRIBUTES, strict=False):
        _panel(axis, attribute, persona_shares, reference, census_refs)
    for axis in flat[len(CENSUS_ATTRIBUTES) :]:
        axis.axis("off")
    handles = [
        Rectangle((0, 0), 1, 1, color=color)
        for key, (_, color) in SERIES_STYLE.items()
        if key == "personas" or key in census_refs
    ]
    labels = [
        name for key, (name, _) in SERIES_STYLE.items() if key == "personas" or key in census_refs
    ]
    figure.suptitle(title, y=0.998, fontsize=15)
    figure.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.985),
        ncol=len(labels),
        fontsize=12,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.015, 1, 0.972))
    add_footer(figure, models=models, seed=seed)
    save_figure(figure, path, title=title, models=models, dpi=DPI)


def _panel(
    axis: Axes,
    attribute: str,
    persona_shares: pl.DataFrame,
    reference: pl.DataFrame,
    census_refs: list[str],
) -> None:
    main_ref = census_refs[0]
    ref = reference.filter((pl.col("attribute") == attribute) & (pl.col("reference") == main_ref))
    top = ref.sort("share", descending=True).get_column("category").to_list()[:MAX_BARS]
    categories = [*top, "Other"] if ref.height > len(top) else top
    series: list[tuple[str, list[float]]] = []
    for key in ("personas", *census_refs):
        source = persona_shares if key == "personas" else reference
        name = main_ref if key == "personas" else key
        table = source.filter((pl.col("attribute") == attribute) & (pl.col("reference") == name))
        shares: dict[str, float] = dict(table.select("category", "share").iter_rows())
        values = [shares.get(category, 0.0) for category in top]
        if len(categories) > len(top):  # everything outside the top categories
            values.append(sum(v for k, v in shares.items() if k not in top))
        series.append((key, values))
    positions = np.arange(len(categories))
    height = 0.8 / max(len(series), 1)
    for offset, (key, values) in enumerate(series):
        name, color = SERIES_STYLE[key]
        axis.barh(positions + offset * height, values, height=height, color=color, label=name)
    axis.set_yticks(positions + height * (len(series) - 1) / 2)
    axis.set_yticklabels([_short(c) for c in categories], fontsize=9)
    axis.invert_yaxis()
    axis.set_title(attribute, fontsize=12)
    axis.tick_params(axis="x", labelsize=9)
    axis.set_xlabel("share", fontsize=9)


def plot_joints(
    joints: pl.DataFrame,
    path: Path,
    title: str,
    *,
    models: Sequence[str] = (),
    seed: int | None = None,
) -> None:
    """One bar chart: per two-way table the personas' TVD against the pool (and before the LLM
    pruning, when recorded), with the i.i.d. sampling-noise mean (tick) and 95th percentile
    (end of the grey band) at the same N."""
    tables = joints.get_column("table").to_list()
    positions = np.arange(len(tables))
    before = joints.get_column("tvd_before_pruning")
    has_before = before.null_count() < before.len()
    height = 0.38 if has_before else 0.6
    figure, axis = plt.subplots(figsize=(8.5, 0.9 * len(tables) + 1.6))
    noise_p95 = joints.get_column("iid_noise_tvd_p95").to_numpy()
    noise_mean = joints.get_column("iid_noise_tvd_mean").to_numpy()
    axis.barh(positions, noise_p95, height=0.9, color="#dddddd", label="i.i.d. noise, 95th pct")
    axis.scatter(noise_mean, positions, marker="|", s=400, color="#555555", zorder=3)
    axis.scatter([], [], marker="|", s=100, color="#555555", label="i.i.d. noise, mean")
    offset = height / 2 if has_before else 0.0
    axis.barh(
        positions - offset,
        joints.get_column("tvd").to_numpy(),
        height=height,
        color=SERIES_STYLE["personas"][1],
        label="Personas (after pruning)" if has_before else "Personas",
    )
    if has_before:
        axis.barh(
            positions + offset,
            before.fill_null(0.0).to_numpy(),
            height=height,
            color="#9467bd",
            label="Before LLM pruning",
        )
    axis.set_yticks(positions)
    axis.set_yticklabels(tables, fontsize=9)
    axis.invert_yaxis()
    axis.set_xlabel("TVD against the weighted pool (joint cell shares)", fontsize=9)
    axis.set_title(title, fontsize=11)
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, frameon=False)
    figure.tight_layout(rect=(0, FOOTER_SPACE, 1, 1))
    add_footer(figure, models=models, seed=seed)
    save_figure(figure, path, title=title, models=models, dpi=DPI)

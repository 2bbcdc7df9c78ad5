"""Bench metrics from the samples table: accuracy, subtlety-flag rate and pass@k per (model,
method); accuracy by persona slice; leave-one-attribute-out deltas; summary attribute drops.

Every CI is the shared cluster bootstrap (persona_testbed.estimation): personas are resampled,
two-way with the questions, which pairs of different personas share. Each estimate draws from
its own random stream, keyed by what it measures, so adding a slice or a model leaves the other
intervals unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from persona_testbed.bench.passk import pass_at_k_per_cluster
from persona_testbed.bench.slices import SliceFilter, with_age_bracket
from persona_testbed.estimation import (
    Estimate,
    Floats,
    RateEstimate,
    bootstrap_mean,
    bootstrap_rate,
    bootstrap_statistic,
)
from persona_testbed.seeding import child_rng

BOOTSTRAP_STREAM = "bench/bootstrap"


class Streams:
    """Independent, reproducible random streams for the bootstrap, one per named estimate
    (`seeding.child_rng` under the purpose "bootstrap", keyed by the estimate's name)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def rng(self, *key: object) -> np.random.Generator:
        return child_rng(self.seed, BOOTSTRAP_STREAM, *map(str, key))


def pair_counts(samples: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Per group and pair: its persona and question (the bootstrap's clusters), samples, valid
    verdicts, passes, subtlety checks and flags."""
    return (
        samples.group_by([*by, "pair_id"], maintain_order=True)
        .agg(
            pl.col("persona_id").first(),
            pl.col("prompt_id").first(),
            pl.len().alias("samples"),
            pl.col("passed").is_not_null().sum().alias("valid"),
            pl.col("passed").fill_null(False).sum().alias("passes"),
            pl.col("verdict_error").is_not_null().sum().alias("verdict_errors"),
            pl.col("generation_failure").is_not_null().sum().alias("generation_failures"),
            pl.col("answer_parse_error").is_not_null().sum().alias("answer_parse_errors"),
            pl.col("not_subtle").is_not_null().sum().alias("subtlety_checked"),
            pl.col("not_subtle").fill_null(False).sum().alias("not_subtle"),
        )
        .sort([*by, "pair_id"])
    )


def cluster_ids(counts: pl.DataFrame) -> dict[str, Any]:
    """The bootstrap clusters of `pair_counts` rows: personas, crossed with questions."""
    return {
        "clusters": counts.get_column("persona_id").to_numpy(),
        "crossed": counts.get_column("prompt_id").to_numpy(),
    }


@dataclass(frozen=True)
class MethodMetrics:
    model: str
    judge_model: str
    method: str
    pairs: int
    samples: int
    verdict_errors: int
    answer_parse_errors: int
    accuracy: RateEstimate
    not_subtle: RateEstimate
    pass_at: dict[int, Estimate] = field(default_factory=dict)
    generation_failures: int = 0
    # Passes over every sample: verdict errors and generation failures count as failures.
    accuracy_failures_counted: RateEstimate = field(
        default_factory=lambda: RateEstimate(None, None, None, 0)
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "judge_model": self.judge_model,
            "method": self.method,
            "pairs": self.pairs,
            "samples": self.samples,
            "verdict_errors": self.verdict_errors,
            "answer_parse_errors": self.answer_parse_errors,
            "generation_failures": self.generation_failures,
            "accuracy": self.accuracy.as_dict(),
            "accuracy_failures_counted": self.accuracy_failures_counted.as_dict(),
            "not_subtle_rate": self.not_subtle.as_dict(),
            "pass_at_k": {str(k): e.as_dict() for k, e in self.pass_at.items()},
        }


def method_metrics(
    samples: pl.DataFrame, k: int, streams: Streams, methods: Sequence[str]
) -> list[MethodMetrics]:
    """One row per (model, method), in the order models appear and methods were asked for."""
    counts = pair_counts(samples, ["model", "judge_model", "method"])
    rows: list[MethodMetrics] = []
    models = samples.select("model", "judge_model").unique(maintain_order=True).iter_rows()
    for model, judge_model in models:
        for method in methods:
            group = counts.filter(
                (pl.col("model") == model)
                & (pl.col("judge_model") == judge_model)
                & (pl.col("method") == method)
            )
            if group.is_empty():
                continue
            valid = group.get_column("valid").to_list()
            passes = group.get_column("passes").to_list()
            pass_at = {
                j: bootstrap_mean(
                    pass_at_k_per_cluster(valid, passes, j),
                    streams.rng("pass@k", model, judge_model, method, j),
                    scale="logit",
                    **cluster_ids(group.filter(pl.col("valid") >= j)),
                )
                for j in range(1, k + 1)
            }
            rows.append(
                MethodMetrics(
                    model=model,
                    judge_model=judge_model,
                    method=method,
                    pairs=group.height,
                    samples=int(group.get_column("samples").sum()),
                    verdict_errors=int(group.get_column("verdict_errors").sum()),
                    answer_parse_errors=int(group.get_column("answer_parse_errors").sum()),
                    accuracy=bootstrap_rate(
                        passes,
                        valid,
                        streams.rng("accuracy", model, judge_model, method),
                        **cluster_ids(group),
                    ),
                    not_subtle=bootstrap_rate(
                        group.get_column("not_subtle").to_list(),
                        group.get_column("subtlety_checked").to_list(),
                        streams.rng("not-subtle", model, judge_model, method),
                        **cluster_ids(group),
                    ),
                    pass_at=pass_at,
                    generation_failures=int(group.get_column("generation_failures").sum()),
                    accuracy_failures_counted=bootstrap_rate(
                        passes,
                        group.get_column("samples").to_list(),
                        streams.rng("accuracy-failures-counted", model, judge_model, method),
                        **cluster_ids(group),
                    ),
                )
            )
    return rows


def _rate_rows(
    counts: pl.DataFrame, keys: dict[str, Any], streams: Streams
) -> dict[str, Any] | None:
    if counts.is_empty():
        return None
    estimate = bootstrap_rate(
        counts.get_column("passes").to_list(),
        counts.get_column("valid").to_list(),
        streams.rng("slice", *keys.values()),
        **cluster_ids(counts),
    )
    return {
        **keys,
        "accuracy": estimate.value,
        "ci_low": estimate.low,
        "ci_high": estimate.high,
        "pairs": counts.height,
        "valid_samples": estimate.trials,
        "passes": estimate.successes,
    }


SLICE_SCHEMA = {
    "model": pl.String,
    "method": pl.String,
    "slice": pl.String,
    "value": pl.String,
    "accuracy": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "pairs": pl.Int64,
    "valid_samples": pl.Int64,
    "passes": pl.Int64,
}


def slice_table(
    samples: pl.DataFrame,
    pairs: pl.DataFrame,
    attributes: Sequence[str],
    filters: Sequence[SliceFilter],
    streams: Streams,
) -> pl.DataFrame:
    """Accuracy per attribute value (and per user filter: its matching pairs and the rest)."""
    persona_columns = with_age_bracket(pairs).select(
        "pair_id", *(c for c in {*attributes, *(cl.attribute for f in filters for cl in f.clauses)})
    )
    counts = pair_counts(samples, ["model", "method"]).join(persona_columns, on="pair_id")
    rows: list[dict[str, Any]] = []
    groups = counts.select("model", "method").unique(maintain_order=True).iter_rows()
    for model, method in groups:
        group = counts.filter((pl.col("model") == model) & (pl.col("method") == method))
        for attribute in attributes:
            values = group.get_column(attribute).cast(pl.String).drop_nulls().unique().sort()
            for value in values:
                subset = group.filter(pl.col(attribute).cast(pl.String) == value)
                keys = {"model": model, "method": method, "slice": attribute, "value": value}
                row = _rate_rows(subset, keys, streams)
                if row is not None:
                    rows.append(row)
        for slice_filter in filters:
            mask = group.select(slice_filter.expr().alias("match")).get_column("match")
            for label, subset in (("match", group.filter(mask)), ("rest", group.filter(~mask))):
                keys = {"model": model, "method": method, "slice": slice_filter.label}
                keys["value"] = label
                row = _rate_rows(subset, keys, streams)
                rows.append(
                    row
                    or {
                        **keys,
                        "accuracy": None,
                        "ci_low": None,
                        "ci_high": None,
                        "pairs": 0,
                        "valid_samples": 0,
                        "passes": 0,
                    }
                )
    return pl.DataFrame(rows, schema=SLICE_SCHEMA)


LOO_SCHEMA = {
    "model": pl.String,
    "attribute": pl.String,
    "pairs": pl.Int64,
    "accuracy_full": pl.Float64,
    "accuracy_without": pl.Float64,
    "delta": pl.Float64,
    "delta_ci_low": pl.Float64,
    "delta_ci_high": pl.Float64,
}


def _delta(sums: dict[str, Floats]) -> Floats:
    result: Floats = sums["s_loo"] / sums["t_loo"] - sums["s_full"] / sums["t_full"]
    return result


def loo_table(full: pl.DataFrame, loo: pl.DataFrame, streams: Streams) -> pl.DataFrame:
    """Accuracy change when one attribute is removed from the persona the model sees, on the
    same pairs (those that have the attribute), with a paired bootstrap CI."""
    full_counts = pair_counts(full, ["model"])
    loo_counts = pair_counts(loo, ["model", "removed_attribute"])
    rows: list[dict[str, Any]] = []
    keys = loo_counts.select("model", "removed_attribute").unique(maintain_order=True)
    for model, attribute in keys.iter_rows():
        joined = (
            loo_counts.filter(
                (pl.col("model") == model) & (pl.col("removed_attribute") == attribute)
            )
            .join(full_counts.filter(pl.col("model") == model), on="pair_id", suffix="_full")
            .filter((pl.col("valid") > 0) & (pl.col("valid_full") > 0))
        )
        columns = {
            "s_full": joined.get_column("passes_full").to_numpy(),
            "t_full": joined.get_column("valid_full").to_numpy(),
            "s_loo": joined.get_column("passes").to_numpy(),
            "t_loo": joined.get_column("valid").to_numpy(),
        }
        estimate = bootstrap_statistic(
            columns, _delta, streams.rng("loo", model, attribute), **cluster_ids(joined)
        )
        full_rate = columns["s_full"].sum() / columns["t_full"].sum() if joined.height else None
        loo_rate = columns["s_loo"].sum() / columns["t_loo"].sum() if joined.height else None
        rows.append(
            {
                "model": model,
                "attribute": attribute,
                "pairs": joined.height,
                "accuracy_full": None if full_rate is None else float(full_rate),
                "accuracy_without": None if loo_rate is None else float(loo_rate),
                "delta": estimate.value,
                "delta_ci_low": estimate.low,
                "delta_ci_high": estimate.high,
            }
        )
    return pl.DataFrame(rows, schema=LOO_SCHEMA)


DROPS_SCHEMA = {
    "model": pl.String,
    "attribute": pl.String,
    "summaries": pl.Int64,
    "dropped": pl.Int64,
    "drop_rate": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
}


def drops_table(mentions: pl.DataFrame, streams: Streams) -> pl.DataFrame:
    """Share of summaries that omit each attribute, over personas that have it."""
    rows: list[dict[str, Any]] = []
    if mentions.is_empty():
        return pl.DataFrame(schema=DROPS_SCHEMA)
    per_pair = mentions.group_by(["model", "attribute", "pair_id"], maintain_order=True).agg(
        pl.len().alias("summaries"), (~pl.col("kept")).sum().alias("dropped")
    )
    # A summary restates the persona alone: personas are the clusters (pair_id = persona|prompt).
    per_pair = per_pair.with_columns(
        pl.col("pair_id").str.replace(r"\|[^|]*$", "").alias("persona_id")
    )
    for (model, attribute), group in per_pair.group_by(["model", "attribute"], maintain_order=True):
        estimate = bootstrap_rate(
            group.get_column("dropped").to_list(),
            group.get_column("summaries").to_list(),
            streams.rng("drops", model, attribute),
            clusters=group.get_column("persona_id").to_numpy(),
        )
        rows.append(
            {
                "model": model,
                "attribute": attribute,
                "summaries": estimate.trials,
                "dropped": estimate.successes,
                "drop_rate": estimate.value,
                "ci_low": estimate.low,
                "ci_high": estimate.high,
            }
        )
    # Ties keep the attributes' order of first appearance (a stable sort), run after run.
    return pl.DataFrame(rows, schema=DROPS_SCHEMA).sort(
        ["model", "drop_rate"], descending=[False, True], maintain_order=True
    )

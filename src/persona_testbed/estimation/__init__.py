"""Estimates with confidence intervals: one cluster bootstrap (personas, crossed with prompts
where observations share a prompt) for every rate, mean and ratio the toolkit prints."""

from persona_testbed.estimation.bootstrap import (
    LEVEL,
    RESAMPLES,
    Counts,
    Estimate,
    Floats,
    RateEstimate,
    Statistic,
    bootstrap_mean,
    bootstrap_rate,
    bootstrap_statistic,
    central_interval,
    cluster_codes,
    resample_counts,
    resampled_sums,
)
from persona_testbed.estimation.format import (
    format_ci,
    format_estimate,
    format_percent,
    markdown_table,
)

__all__ = [
    "LEVEL",
    "RESAMPLES",
    "Counts",
    "Estimate",
    "Floats",
    "RateEstimate",
    "Statistic",
    "bootstrap_mean",
    "bootstrap_rate",
    "bootstrap_statistic",
    "central_interval",
    "cluster_codes",
    "format_ci",
    "format_estimate",
    "format_percent",
    "markdown_table",
    "resample_counts",
    "resampled_sums",
]

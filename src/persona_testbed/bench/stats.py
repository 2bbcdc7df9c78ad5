"""The bench's estimators are the shared ones (persona_testbed.estimation): cluster bootstrap
over personas, crossed with questions. Re-exported here for code that imports them from bench."""

from persona_testbed.estimation import (
    LEVEL,
    RESAMPLES,
    Estimate,
    RateEstimate,
    bootstrap_mean,
    bootstrap_rate,
    bootstrap_statistic,
)

__all__ = [
    "LEVEL",
    "RESAMPLES",
    "Estimate",
    "RateEstimate",
    "bootstrap_mean",
    "bootstrap_rate",
    "bootstrap_statistic",
]

"""Big Five domain levels from correlated normal scores, binned by population percentile.

Scores are drawn from a 5-variate standard normal whose correlation matrix is the BFI-2 domain
intercorrelation pattern. APPROXIMATE, after Soto & John (2017), "The next Big Five Inventory
(BFI-2)", J. Pers. Soc. Psych. 113(1):117-143, domain-scale intercorrelations in their validation
samples: the values below are rounded to two decimals from that pattern and could not be
re-checked against the printed table offline (see docs/personas.md). The BFI-2 calls Neuroticism
"Negative Emotionality" and Openness "Open-Mindedness"; the paper's Appendix C names are used.

Levels cut the normal at the 10th, 30th, 70th and 90th percentiles: Extremely Low (bottom 10%),
Low (10-30%), Average (30-70%), High (70-90%), Extremely High (top 10%).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import norm

DOMAINS: tuple[str, ...] = (
    "Openness",
    "Conscientiousness",
    "Extraversion",
    "Agreeableness",
    "Neuroticism",
)
LEVELS: tuple[str, ...] = ("Extremely Low", "Low", "Average", "High", "Extremely High")
PERCENTILE_CUTS: tuple[float, ...] = (0.10, 0.30, 0.70, 0.90)

# Domain intercorrelations, order O, C, E, A, N (approximate, after Soto & John 2017).
CORRELATION = np.array(
    [
        # O     C      E      A      N
        [1.00, 0.09, 0.24, 0.19, -0.09],  # Openness (Open-Mindedness)
        [0.09, 1.00, 0.28, 0.33, -0.33],  # Conscientiousness
        [0.24, 0.28, 1.00, 0.18, -0.38],  # Extraversion
        [0.19, 0.33, 0.18, 1.00, -0.28],  # Agreeableness
        [-0.09, -0.33, -0.38, -0.28, 1.00],  # Neuroticism (Negative Emotionality)
    ]
)
_Z_CUTS = norm.ppf(PERCENTILE_CUTS)
_CHOLESKY = np.linalg.cholesky(CORRELATION)


def draw_levels(n: int, rng: np.random.Generator) -> np.ndarray:
    """An (n, 5) array of level indices (0 = Extremely Low ... 4 = Extremely High)."""
    scores = rng.standard_normal((n, len(DOMAINS))) @ _CHOLESKY.T
    return np.searchsorted(_Z_CUTS, scores, side="right").astype(np.int64)


def _all_texts() -> list[str]:
    """The text of every level combination, indexed by the base-5 code of the levels."""
    texts = []
    for code in range(len(LEVELS) ** len(DOMAINS)):
        parts = []
        for position, domain in enumerate(DOMAINS):
            level = (code // len(LEVELS) ** position) % len(LEVELS)
            parts.append(f"{domain}: {LEVELS[level]}")
        texts.append(", ".join(parts))
    return texts


_TEXTS = pl.Series("big five scores", _all_texts(), dtype=pl.String)


def format_levels(levels: np.ndarray) -> pl.Series:
    """'Openness: High, Conscientiousness: Low, ...' per row, as in the paper's Appendix C."""
    powers = len(LEVELS) ** np.arange(len(DOMAINS))
    codes = levels @ powers
    return _TEXTS.gather(pl.Series(codes, dtype=pl.UInt32))


def draw_big_five(n: int, rng: np.random.Generator) -> pl.Series:
    return format_levels(draw_levels(n, rng))

"""Age brackets shared by the census stage (decoding, raking, comparison) and the bench's
persona slices."""

from __future__ import annotations

# The raking target's adult brackets, preceded by two child brackets: (lowest age, highest
# age, label).
AGE_BRACKETS: tuple[tuple[int, int, str], ...] = (
    (0, 4, "Under 5"),
    (5, 17, "5-17"),
    (18, 24, "18-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 54, "45-54"),
    (55, 64, "55-64"),
    (65, 200, "65+"),
)

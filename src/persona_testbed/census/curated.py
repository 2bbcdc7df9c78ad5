"""Hand-curated lists (core values, defining quirks, mannerisms, personal time, lifestyle) and
age-aware uniform draws from them (data/curated_lists.yaml)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from persona_testbed.census.categories import ADULT_AGE
from persona_testbed.census.resources import CURATED_FILE
from persona_testbed.errors import InputError

CURATED_LISTS: tuple[str, ...] = (
    "core values",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
)
MAX_AGE = 200
SECTIONS: dict[str, tuple[int, int]] = {
    "any": (0, MAX_AGE),
    "adult": (ADULT_AGE, MAX_AGE),
    "child": (0, ADULT_AGE - 1),
}
_AGE_TAG = re.compile(r"\s*\[(\d+)(?:-(\d+)|\+)\]\s*$")


@dataclass(frozen=True)
class Entry:
    text: str
    min_age: int
    max_age: int


def parse_entry(raw: str, section: tuple[int, int]) -> Entry:
    """ "Text [lo-hi]" -> Entry narrowed to the intersection of the tag and the section ages."""
    lo, hi = section
    match = _AGE_TAG.search(raw)
    if match:
        lo = max(lo, int(match.group(1)))
        hi = min(hi, int(match.group(2)) if match.group(2) else MAX_AGE)
        raw = raw[: match.start()]
    return Entry(raw.strip(), lo, hi)


@cache
def load_lists(path: Path = CURATED_FILE) -> dict[str, tuple[Entry, ...]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read curated lists ({exc})") from None
    lists: dict[str, tuple[Entry, ...]] = {}
    for name in CURATED_LISTS:
        sections = data.get(name) or {}
        entries = [
            parse_entry(str(raw), SECTIONS[section])
            for section, items in sections.items()
            for raw in items or []
        ]
        lists[name] = tuple(entries)
    return lists


def draw_curated(name: str, ages: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """One entry of list `name` per person, uniform among the entries that fit their age.

    Vectorized: ages are cut into bands inside which the fitting entries do not change."""
    entries = load_lists()[name]
    edges = sorted(
        {0, MAX_AGE + 1} | {e.min_age for e in entries} | {e.max_age + 1 for e in entries}
    )
    pools: list[list[int]] = []
    for lo, hi in itertools.pairwise(edges):
        pool = [i for i, e in enumerate(entries) if e.min_age <= lo and hi - 1 <= e.max_age]
        if not pool:
            raise InputError(f"{CURATED_FILE}: list '{name}' has no entry for ages {lo}-{hi - 1}")
        pools.append(pool)
    flat = np.array([i for pool in pools for i in pool], dtype=np.int64)
    sizes = np.array([len(pool) for pool in pools], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    band = np.searchsorted(np.array(edges[1:-1]), np.clip(ages, 0, MAX_AGE), side="right")
    pick = (rng.random(ages.size) * sizes[band]).astype(np.int64)
    chosen = flat[offsets[band] + pick]
    texts = pl.Series(name, [e.text for e in entries], dtype=pl.String)
    return texts.gather(pl.Series(chosen, dtype=pl.UInt32))

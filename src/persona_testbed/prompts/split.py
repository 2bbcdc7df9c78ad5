"""Train / held-out split of the kept prompts, stratified by topic (§3.2: 3,000 train and 868
held-out of 3,868 prompts, covering the topic distribution uniformly)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

PAPER_TRAIN = 3000
PAPER_TOTAL = 3868
TRAIN_FRACTION = PAPER_TRAIN / PAPER_TOTAL
TRAIN = "train"
HELDOUT = "heldout"


def train_size(n: int, train_fraction: float = TRAIN_FRACTION) -> int:
    """3,000 of 3,868, and the same proportion for other sizes."""
    return round(n * train_fraction)


def stratified_split(
    topics: Sequence[str], rng: np.random.Generator, train_fraction: float = TRAIN_FRACTION
) -> list[str]:
    """ "train" or "heldout" per prompt. Each topic gets its proportional share of the train
    total (largest remainders, ties broken at random), then its members are drawn at random."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, topic in enumerate(topics):
        members[topic].append(index)
    names = sorted(members)
    quotas = np.array([len(members[t]) * train_fraction for t in names])
    counts = np.floor(quotas).astype(int)
    remaining = train_size(len(topics), train_fraction) - int(counts.sum())
    if remaining > 0:
        # A random key below the remainder breaks ties without favouring alphabetical order.
        order = np.lexsort((rng.random(len(names)), -(quotas - counts)))
        counts[order[:remaining]] += 1
    labels = [HELDOUT] * len(topics)
    for name, count in zip(names, counts, strict=True):
        chosen = rng.permutation(members[name])[:count]
        for index in chosen:
            labels[int(index)] = TRAIN
    return labels

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from persona_testbed.prompts import (
    PAPER_TOTAL,
    PAPER_TRAIN,
    child_rng,
    cluster_embeddings,
    cluster_labels,
    stratified_split,
    tag_agreement,
    top_words,
    train_size,
)


def _topics(sizes: dict[str, int]) -> list[str]:
    topics = [t for t, n in sizes.items() for _ in range(n)]
    return list(np.random.default_rng(1).permutation(topics))


def test_paper_sizes_split_3000_868() -> None:
    assert train_size(PAPER_TOTAL) == PAPER_TRAIN
    topics = _topics({f"t{i}": n for i, n in enumerate([900, 700, 640, 500, 400, 300, 428])})
    split = stratified_split(topics, child_rng(0, "split"))
    assert Counter(split) == {"train": 3000, "heldout": 868}


def test_split_is_stratified_by_topic() -> None:
    sizes = {"politics": 40, "family": 33, "money": 17, "health": 9, "rare": 1}
    topics = _topics(sizes)
    split = stratified_split(topics, child_rng(3, "split"))
    fraction = PAPER_TRAIN / PAPER_TOTAL
    assert split.count("train") == train_size(len(topics))
    for topic, n in sizes.items():
        in_train = sum(1 for t, s in zip(topics, split, strict=True) if t == topic and s == "train")
        assert abs(in_train - n * fraction) < 1, topic


def test_split_is_reproducible_and_seeded() -> None:
    topics = _topics({"a": 50, "b": 30, "c": 20})
    first = stratified_split(topics, child_rng(7, "split"))
    assert stratified_split(topics, child_rng(7, "split")) == first
    assert stratified_split(topics, child_rng(8, "split")) != first


def test_kmeans_finds_separated_groups_and_agreement_is_perfect() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:5] * 5
    points = np.vstack([c + rng.normal(0, 0.1, (12, 8)) for c in centres])
    tags = [f"tag{i}" for i in range(5) for _ in range(12)]
    clustering = cluster_embeddings(points, k=None, random_state=0)
    assert clustering.k == 5
    assert clustering.method == "kmeans, k by silhouette"
    agreement = tag_agreement(tags, clustering.assignments)
    assert agreement["adjusted_rand_index"] == pytest.approx(1.0)
    assert agreement["normalized_mutual_info"] == pytest.approx(1.0)
    fixed = cluster_embeddings(points, k=3, random_state=0)
    assert fixed.k == 3 and len(set(fixed.assignments)) == 3


def test_tiny_inputs_make_one_cluster() -> None:
    clustering = cluster_embeddings(np.eye(2), k=None, random_state=0)
    assert clustering.k == 1 and clustering.assignments.tolist() == [0, 0]


def test_cluster_labels_come_from_distinctive_words() -> None:
    texts = [
        "Should taxes on the rich rise?",
        "Are taxes on income fair?",
        "Should prayer happen in school?",
        "Is prayer good for children?",
    ]
    words = top_words(texts, np.array([0, 0, 1, 1]), 2, n_words=1)
    assert words == [["taxes"], ["prayer"]]
    assert cluster_labels([["a", "b"], ["a", "b"], []]) == ["a, b", "a, b (1)", "cluster 2"]

"""Topics: cluster prompt embeddings, label clusters by their top words, and measure how well
clusters agree with hand-written topic tags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Enough clusters to separate PRISM's broad themes (Fig. 3 shows about 20), few enough that each
# cluster is still a readable topic.
AUTO_K_RANGE = (4, 24)
TOP_WORDS = 3


@dataclass(frozen=True)
class Clustering:
    assignments: np.ndarray  # cluster index per prompt
    k: int
    method: str  # "kmeans, k by silhouette", "kmeans, k fixed", "single cluster"
    silhouette: float | None
    silhouette_by_k: dict[int, float] = field(default_factory=dict)


def _kmeans(embeddings: np.ndarray, k: int, random_state: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=10, random_state=random_state)
    return np.asarray(model.fit_predict(embeddings), dtype=np.int64)


def cluster_embeddings(embeddings: np.ndarray, *, k: int | None, random_state: int) -> Clustering:
    """KMeans on unit vectors (Euclidean = cosine). `k=None` picks k in AUTO_K_RANGE by the
    silhouette score; fewer than 3 prompts make a single cluster."""
    from sklearn.metrics import silhouette_score

    n = len(embeddings)
    if n < 3 or (k is not None and k <= 1):
        return Clustering(np.zeros(n, dtype=np.int64), 1, "single cluster", None)
    if k is not None:
        k = min(k, n - 1)
        labels = _kmeans(embeddings, k, random_state)
        score = float(silhouette_score(embeddings, labels)) if len(set(labels)) > 1 else None
        return Clustering(labels, k, "kmeans, k fixed", score)
    low, high = AUTO_K_RANGE
    candidates = range(min(low, n - 1), min(high, n - 1) + 1)
    scores: dict[int, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    for candidate in candidates:
        labels = _kmeans(embeddings, candidate, random_state)
        if len(set(labels)) < 2:
            continue
        score = float(silhouette_score(embeddings, labels))
        scores[candidate] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, candidate, labels)
    if best is None:
        return Clustering(np.zeros(n, dtype=np.int64), 1, "single cluster", None)
    score, chosen, labels = best
    return Clustering(labels, chosen, "kmeans, k by silhouette", score, scores)


def top_words(
    texts: Sequence[str], assignments: np.ndarray, k: int, n_words: int = TOP_WORDS
) -> list[list[str]]:
    """Each cluster's most distinctive words by class-based TF-IDF: a cluster's prompts form
    one document, so words frequent in every cluster score low."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    documents = [
        " ".join(t for t, a in zip(texts, assignments, strict=True) if a == c) for c in range(k)
    ]
    vectorizer = TfidfVectorizer(
        stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", sublinear_tf=True
    )
    try:
        matrix = vectorizer.fit_transform(documents)
    except ValueError:  # only stop words: no vocabulary
        return [[] for _ in range(k)]
    vocabulary = np.asarray(vectorizer.get_feature_names_out())
    words = []
    for row in matrix.toarray():
        order = np.argsort(-row, kind="stable")[:n_words]
        words.append([str(vocabulary[i]) for i in order if row[i] > 0])
    return words


def cluster_labels(words: Sequence[Sequence[str]]) -> list[str]:
    """A readable, unique label per cluster from its top words."""
    labels: list[str] = []
    for index, cluster_words in enumerate(words):
        label = ", ".join(cluster_words) or f"cluster {index}"
        labels.append(label if label not in labels else f"{label} ({index})")
    return labels


def tag_agreement(tags: Sequence[str], assignments: np.ndarray) -> dict[str, Any]:
    """How well clusters recover hand-written topic tags (1.0 = the same partition)."""
    from sklearn import metrics

    return {
        "n": len(tags),
        "n_tags": len(set(tags)),
        "adjusted_rand_index": round(float(metrics.adjusted_rand_score(tags, assignments)), 4),
        "normalized_mutual_info": round(
            float(metrics.normalized_mutual_info_score(tags, assignments)), 4
        ),
        "homogeneity": round(float(metrics.homogeneity_score(tags, assignments)), 4),
        "completeness": round(float(metrics.completeness_score(tags, assignments)), 4),
    }

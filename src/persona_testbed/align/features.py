"""Features of (prompt, answer) and of personas for the reward models, and the embedders.

An answer's features are its sentence embedding, a few surface features (length in words,
mean word length, sentences, lines) and its relevance to the prompt (the cosine of the two
embeddings). The reward models score a pair on the difference phi(A) - phi(B), which makes
P(A preferred) = 1 - P(B preferred): the answer order cannot help.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from persona_testbed.prompts import Embedder, MiniLMEmbedder

Matrix = npt.NDArray[np.float64]
TEXT_FEATURES: tuple[str, ...] = ("log words", "mean word length", "log sentences", "log lines")
_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


class HashingEmbedder:
    """Bag of words hashed into `dim` signed buckets, unit length: deterministic, instant and
    without a model (tests, quick runs; it sees words, not meaning)."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hashing-bow-{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                code = zlib.crc32(word.encode("utf-8"))
                # One bit of the hash picks the sign, so unrelated words cancel on average.
                out[row, code % self.dim] += 1.0 if (code >> 31) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class CachedEmbedder:
    """Embeds each distinct text once per run: every method and split asks for the same
    prompts, answers and persona cards."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self._vectors: dict[str, Matrix] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vectors = np.asarray(self.inner.embed(missing), dtype=np.float64)
            self._vectors.update(zip(missing, vectors, strict=True))
        if not texts:
            dim = next(iter(self._vectors.values())).shape[0] if self._vectors else 0
            return np.zeros((0, dim))
        return np.stack([self._vectors[t] for t in texts])


def make_embedder(name: str) -> Embedder:
    """The embedder a config names: `minilm` (the bundled all-MiniLM-L6-v2) or `hashing`."""
    if name == "hashing":
        return HashingEmbedder()
    return MiniLMEmbedder()


def text_features(texts: Sequence[str]) -> Matrix:
    """Surface features of each text (TEXT_FEATURES), logs where counts grow without bound."""
    rows = []
    for text in texts:
        words = _WORD.findall(text.lower())
        mean_length = float(np.mean([len(w) for w in words])) if words else 0.0
        sentences = max(1, len(_SENTENCE_END.findall(text))) if words else 0
        lines = len([line for line in text.splitlines() if line.strip()])
        rows.append([np.log1p(len(words)), mean_length, np.log1p(sentences), np.log1p(lines)])
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), len(TEXT_FEATURES))


def answer_features(embedder: Embedder, prompts: Sequence[str], answers: Sequence[str]) -> Matrix:
    """phi(prompt, answer): the answer's embedding, its surface features and its cosine to
    the prompt (both embeddings are unit length)."""
    answer_vectors = np.asarray(embedder.embed(list(answers)), dtype=np.float64)
    prompt_vectors = np.asarray(embedder.embed(list(prompts)), dtype=np.float64)
    relevance = (answer_vectors * prompt_vectors).sum(axis=1, keepdims=True)
    return np.hstack([answer_vectors, text_features(answers), relevance])


def pair_differences(embedder: Embedder, pairs: pl.DataFrame) -> Matrix:
    """phi(A) - phi(B) of every row of a pairs frame."""
    prompts = pairs["prompt"].to_list()
    a = answer_features(embedder, prompts, pairs["answer_a"].to_list())
    b = answer_features(embedder, prompts, pairs["answer_b"].to_list())
    return a - b


def column_scale(matrix: Matrix) -> Matrix:
    """Root mean square of each column (1 where a column is all zero): differences of both
    orders have mean zero, so this is their spread."""
    rms = np.sqrt((matrix**2).mean(axis=0)) if matrix.size else np.ones(matrix.shape[1])
    scale: Matrix = np.where(rms > 1e-12, rms, 1.0)
    return scale


def top_components(matrix: Matrix, k: int, *, centre: bool) -> tuple[Matrix, Matrix]:
    """(mean, components as columns) of the top `k` principal directions of the rows: an
    eigendecomposition of the small covariance matrix, deterministic (no random solver)."""
    mean = matrix.mean(axis=0) if centre else np.zeros(matrix.shape[1])
    centred = matrix - mean
    covariance = centred.T @ centred / max(1, centred.shape[0])
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][: max(0, k)]
    keep = order[values[order] > 1e-10 * max(1.0, float(values.max(initial=0.0)))]
    # Fix each component's sign (largest entry positive): eigh's signs are arbitrary.
    components = vectors[:, keep]
    signs = np.sign(components[np.abs(components).argmax(axis=0), np.arange(components.shape[1])])
    return mean, components * np.where(signs == 0, 1.0, signs)

"""Alignment methods: what a method is, the registry, and the three built-in baselines.

A method is any object with `fit(train_pairs)` and `predict(pairs) -> P(A preferred)` (a numpy
array, one probability per row), made by a factory that gets the run's `MethodContext` (its
seed and its cached embedder). `register_method(name, factory)` adds one; `persona align
--methods NAME` and the `align.methods` list of a run file pick it, and the same harness scores
it (docs/align.md). The pairs frames are described in `persona_testbed.align.pairs`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from persona_testbed.align.features import (
    Matrix,
    column_scale,
    pair_differences,
    top_components,
)
from persona_testbed.align.pairs import LABEL
from persona_testbed.contracts import AGE_BRACKET, ATTRIBUTES
from persona_testbed.prompts import Embedder

Probabilities = npt.NDArray[np.float64]

PERSONA_BLIND = "persona-blind"
PERSONA_CONDITIONED = "persona-conditioned"
GROUP = "group"
BUILTIN_METHODS: tuple[str, ...] = (PERSONA_BLIND, PERSONA_CONDITIONED, GROUP)
# L2 strength of the logistic models (scikit-learn's C: larger fits harder).
C_BLIND, C_CONDITIONED = 1.0, 1.0
# Persona features of the conditioned model: the most balanced attribute-value indicators,
# the top components of the persona cards' embeddings, and the top components of the answer
# differences they interact with (their product is the model's size).
MAX_INDICATORS, CARD_COMPONENTS, DIFF_COMPONENTS = 32, 8, 12


class AlignMethod(Protocol):
    """A preference predictor: fit on the train pairs, then P(answer A preferred) per row."""

    def fit(self, train_pairs: pl.DataFrame) -> None: ...

    def predict(self, pairs: pl.DataFrame) -> Probabilities: ...


class FallbackError(Exception):
    """A method cannot fit these data (too few rows, one class): it predicts 0.5, and the
    leaderboard gives this message as the reason."""


@dataclass(frozen=True)
class MethodContext:
    """What a factory gets: the run's seed and its embedder (each text embedded once)."""

    seed: int
    embedder: Embedder
    min_train_pairs: int = 2
    neighbours: int = 5


MethodFactory = Callable[[MethodContext], AlignMethod]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    factory: MethodFactory
    persona_aware: bool
    description: str


_METHODS: dict[str, MethodInfo] = {}


def register_method(
    name: str, factory: MethodFactory, *, persona_aware: bool = True, description: str = ""
) -> None:
    """Add (or replace) method `name`. `persona_aware`: whether it may use the persona (its
    gap over the persona-blind model is reported)."""
    _METHODS[name] = MethodInfo(name, factory, persona_aware, description)


def unregister_method(name: str) -> None:
    _METHODS.pop(name, None)


def registered_methods() -> tuple[str, ...]:
    return tuple(_METHODS)


def method_info(name: str) -> MethodInfo:
    return _METHODS[name]


def _check_size(train: pl.DataFrame, minimum: int) -> None:
    n_pairs = train["pair_id"].n_unique() if train.height else 0
    if n_pairs < minimum:
        raise FallbackError(f"{n_pairs} train pairs (fewer than {minimum}): predicts 0.5")
    if train[LABEL].n_unique() < 2:
        raise FallbackError("the train pairs hold one class only: predicts 0.5")


def _logistic(features: Matrix, labels: npt.NDArray[np.int64], c: float, seed: int) -> object:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    # No intercept: with features phi(A) - phi(B), P(A) = 1 - P(B) for every model it fits.
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the fit is still usable
        model.fit(features, labels)
    return model


def _proba(model: object, features: Matrix) -> Probabilities:
    probabilities = np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)  # type: ignore[attr-defined]
    return probabilities


class BlindRewardModel:
    """Persona-blind Bradley-Terry reward model: logistic regression on phi(A) - phi(B)."""

    def __init__(self, context: MethodContext) -> None:
        self.context = context
        self._model: object | None = None
        self._scale: Matrix | None = None

    def _differences(self, pairs: pl.DataFrame) -> Matrix:
        return pair_differences(self.context.embedder, pairs)

    def fit(self, train_pairs: pl.DataFrame) -> None:
        _check_size(train_pairs, self.context.min_train_pairs)
        differences = self._differences(train_pairs)
        self._scale = column_scale(differences)
        labels = train_pairs[LABEL].to_numpy().astype(np.int64)
        self._model = _logistic(differences / self._scale, labels, C_BLIND, self.context.seed)

    def predict(self, pairs: pl.DataFrame) -> Probabilities:
        assert self._model is not None and self._scale is not None, "fit first"
        return _proba(self._model, self._differences(pairs) / self._scale)


def persona_attributes(pairs: pl.DataFrame) -> list[str]:
    return [c for c in (*ATTRIBUTES, AGE_BRACKET) if c in pairs.columns]


def personas_of(pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per persona of a pairs frame: persona_id, persona_text and the attributes."""
    columns = ["persona_id", "persona_text", *persona_attributes(pairs)]
    return pairs.select(columns).unique("persona_id", keep="first").sort("persona_id")


class ConditionedRewardModel:
    """Persona-conditioned reward model: the blind model's features plus the products of a
    persona vector (balanced attribute indicators, the top components of the persona card's
    embedding) with the top components of phi(A) - phi(B). A linear model on those products is
    a reward whose answer weights depend on the persona."""

    def __init__(self, context: MethodContext) -> None:
        self.context = context
        self._model: object | None = None

    def _persona_vectors(self, personas: pl.DataFrame) -> Matrix:
        """Standardised persona vectors (rows in the order of `personas`)."""
        columns = []
        for attribute, value in self._indicators:
            column = personas[attribute] if attribute in personas.columns else None
            hits = (
                np.zeros(personas.height)
                if column is None
                else (column == value).fill_null(False).to_numpy()
            )
            columns.append(hits.astype(np.float64))
        cards = np.asarray(
            self.context.embedder.embed(personas["persona_text"].to_list()), dtype=np.float64
        )
        projected = (cards - self._card_mean) @ self._card_components
        matrix = np.hstack(
            [np.column_stack(columns) if columns else np.zeros((personas.height, 0)), projected]
        )
        return (matrix - self._persona_mean) / self._persona_scale

    def _fit_persona_space(self, personas: pl.DataFrame) -> None:
        n = personas.height
        candidates: list[tuple[float, str, str]] = []
        for attribute in persona_attributes(personas):
            counts = personas[attribute].drop_nulls().value_counts()
            for value, count in counts.iter_rows():
                share = count / n
                # A value held by one persona (a free-text quirk) or by all tells nothing.
                if count >= 2 and count < n:
                    candidates.append((-share * (1 - share), attribute, str(value)))
        self._indicators = [(a, v) for _, a, v in sorted(candidates)[:MAX_INDICATORS]]
        cards = np.asarray(
            self.context.embedder.embed(personas["persona_text"].to_list()), dtype=np.float64
        )
        k = min(CARD_COMPONENTS, max(0, n - 1))
        self._card_mean, self._card_components = top_components(cards, k, centre=True)
        self._persona_mean = np.zeros(len(self._indicators) + self._card_components.shape[1])
        self._persona_scale = np.ones_like(self._persona_mean)
        raw = self._persona_vectors(personas)
        self._persona_mean = raw.mean(axis=0)
        spread = raw.std(axis=0)
        self._persona_scale = np.where(spread > 1e-12, spread, 1.0)

    def _features(self, pairs: pl.DataFrame) -> Matrix:
        differences = pair_differences(self.context.embedder, pairs) / self._scale
        reduced = differences @ self._diff_components / self._diff_spread
        personas = personas_of(pairs)
        vectors = self._persona_vectors(personas)
        index = {pid: i for i, pid in enumerate(personas["persona_id"].to_list())}
        rows = vectors[[index[pid] for pid in pairs["persona_id"].to_list()]]
        products = (rows[:, :, None] * reduced[:, None, :]).reshape(pairs.height, -1)
        return np.hstack([differences, products])

    def fit(self, train_pairs: pl.DataFrame) -> None:
        _check_size(train_pairs, self.context.min_train_pairs)
        differences = pair_differences(self.context.embedder, train_pairs)
        self._scale = column_scale(differences)
        scaled = differences / self._scale
        # Directions along which y_w and y_l differ (the differences of both orders have mean 0).
        _, self._diff_components = top_components(scaled, DIFF_COMPONENTS, centre=False)
        spread = (scaled @ self._diff_components).std(axis=0)
        self._diff_spread = np.where(spread > 1e-12, spread, 1.0)
        self._fit_persona_space(personas_of(train_pairs))
        labels = train_pairs[LABEL].to_numpy().astype(np.int64)
        features = self._features(train_pairs)
        self._model = _logistic(features, labels, C_CONDITIONED, self.context.seed)

    def predict(self, pairs: pl.DataFrame) -> Probabilities:
        assert self._model is not None, "fit first"
        return _proba(self._model, self._features(pairs))


class GroupBaseline:
    """The preference of the most similar training personas on the same prompt: each of the
    `neighbours` most similar personas (share of equal attribute values; without attributes,
    the cosine of the persona cards) that has a train pair on the prompt votes for the answer
    closer to its y_w than to its y_l; 0.5 where no training persona has the prompt."""

    def __init__(self, context: MethodContext) -> None:
        self.context = context
        self.note: str | None = None

    def fit(self, train_pairs: pl.DataFrame) -> None:
        chosen_first = train_pairs.filter(pl.col(LABEL) == 1)
        self._train = chosen_first.select(
            "persona_id", "prompt_key", pl.col("answer_a").alias("chosen"),
            pl.col("answer_b").alias("rejected"),
        )  # fmt: skip
        self._personas = personas_of(train_pairs)

    def _similarity(self, personas: pl.DataFrame) -> Matrix:
        """personas x training personas."""
        attributes = [a for a in persona_attributes(personas) if a in self._personas.columns]
        if not attributes:
            embed = self.context.embedder.embed
            a = np.asarray(embed(personas["persona_text"].to_list()), dtype=np.float64)
            b = np.asarray(embed(self._personas["persona_text"].to_list()), dtype=np.float64)
            similarity: Matrix = a @ b.T
            return similarity
        equal = np.zeros((personas.height, self._personas.height))
        both = np.zeros_like(equal)
        for attribute in attributes:
            left = personas[attribute].to_list()
            right = self._personas[attribute].to_list()
            codes = {
                v: i for i, v in enumerate(dict.fromkeys(v for v in left + right if v is not None))
            }
            lc = np.array([codes.get(v, -1) if v is not None else -1 for v in left])
            rc = np.array([codes.get(v, -2) if v is not None else -2 for v in right])
            known = (lc[:, None] >= 0) & (rc[None, :] >= 0)
            both += known
            equal += known & (lc[:, None] == rc[None, :])
        return np.divide(equal, both, out=np.zeros_like(equal), where=both > 0)

    def predict(self, pairs: pl.DataFrame) -> Probabilities:
        self.note = None
        out = np.full(pairs.height, 0.5)
        if pairs.is_empty() or self._train.is_empty():
            return out
        personas = personas_of(pairs)
        similarity = self._similarity(personas)
        row_of = {pid: i for i, pid in enumerate(personas["persona_id"].to_list())}
        col_of = {pid: i for i, pid in enumerate(self._personas["persona_id"].to_list())}
        by_prompt = self._train.partition_by("prompt_key", as_dict=True)
        embed = self.context.embedder.embed
        missing = 0
        for index, row in enumerate(pairs.iter_rows(named=True)):
            group = by_prompt.get((row["prompt_key"],))
            if group is None:
                missing += 1
                continue
            neighbours = sorted(
                zip(group["persona_id"].to_list(), range(group.height), strict=True),
                key=lambda item: (-similarity[row_of[row["persona_id"]], col_of[item[0]]], item[0]),
            )[: self.context.neighbours]
            answers = np.asarray(embed([row["answer_a"], row["answer_b"]]), dtype=np.float64)
            votes, weights = 0.0, 0.0
            for persona_id, position in neighbours:
                reference = np.asarray(
                    embed([group["chosen"][position], group["rejected"][position]]),
                    dtype=np.float64,
                )
                # How much closer each answer is to the neighbour's y_w than to its y_l.
                lean = answers @ reference[0] - answers @ reference[1]
                vote = 0.5 if np.isclose(lean[0], lean[1]) else float(lean[0] > lean[1])
                weight = max(similarity[row_of[row["persona_id"]], col_of[persona_id]], 1e-3)
                votes += weight * vote
                weights += weight
            # One pseudo-vote at 0.5 keeps the probability off 0 and 1 (finite log-loss).
            out[index] = (votes + 0.5) / (weights + 1.0)
        if missing:
            self.note = (
                f"{missing} of {pairs.height} rows without a train pair on their prompt: 0.5"
            )
        return out


register_method(
    PERSONA_BLIND,
    BlindRewardModel,
    persona_aware=False,
    description="logistic regression on phi(A) - phi(B), without the persona",
)
register_method(
    PERSONA_CONDITIONED,
    ConditionedRewardModel,
    description="the blind features plus persona x answer-difference products",
)
register_method(
    GROUP,
    GroupBaseline,
    description="votes of the most similar training personas on the same prompt",
)

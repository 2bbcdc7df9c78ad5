"""The harness's statistics: the cluster-bootstrap accuracy CI covers the true rate at about
its nominal level (the wiring to persona_testbed.estimation), and the pluralism verdicts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from persona_testbed.align import AlignConfig, MethodRun, leaderboard
from persona_testbed.align.evaluate import AWARE, BLIND, LEADERBOARD_SCHEMA, _verdict


def _simulated_run(rng: np.random.Generator, personas: int, pairs: int) -> MethodRun:
    """Persona-level skill (correlated pairs within a persona): P(right) = expit(1 + N(0, 1))."""
    rows = []
    for g in range(personas):
        skill = 1.0 / (1.0 + np.exp(-(1.0 + rng.normal())))
        for j in range(pairs):
            right = rng.random() < skill
            for order, label in (("chosen_first", 1), ("rejected_first", 0)):
                p = 0.8 if (label == 1) == right else 0.2
                rows.append(("test_seen", f"g{g}-{j}", f"g{g}", f"q{g}-{j}", order, label, p))
    frame = pl.DataFrame(
        rows,
        schema=["split", "pair_id", "persona_id", "prompt_key", "order", "label", "p"],
        orient="row",
    )
    return MethodRun("sim", BLIND, frame, ())


def test_the_accuracy_ci_covers_the_true_rate_at_about_the_nominal_level() -> None:
    rng = np.random.default_rng(7)
    draws = rng.normal(size=400_000)
    truth = float(np.mean(1.0 / (1.0 + np.exp(-(1.0 + draws)))))
    config = AlignConfig(resamples=300)
    covered, trials = 0, 200
    for _ in range(trials):
        board = leaderboard([_simulated_run(rng, personas=25, pairs=6)], config)
        row = board.filter(pl.col("split") == "test_seen").row(0, named=True)
        covered += row["ci_low"] <= truth <= row["ci_high"]
    assert 0.88 <= covered / trials <= 0.99


def _board(rows: list[dict[str, object]]) -> pl.DataFrame:
    full = [{name: row.get(name) for name in LEADERBOARD_SCHEMA} for row in rows]
    return pl.DataFrame(full, schema=LEADERBOARD_SCHEMA)


BLIND_ROW: dict[str, object] = {"method": "persona-blind", "kind": BLIND, "split": "test_seen"}
AWARE_ROW: dict[str, object] = {
    "method": "persona-conditioned",
    "kind": AWARE,
    "split": "test_seen",
}


@pytest.mark.parametrize(
    ("blind", "gap", "verdict"),
    [
        ((0.80, 0.72, 0.87), (0.01, -0.04, 0.06), "not-pluralistic"),
        ((0.97, 0.90, 0.99), (0.0, -0.01, 0.01), "blind-near-perfect"),
        ((0.55, 0.48, 0.62), (0.30, 0.20, 0.40), "persona-helps"),
        ((0.52, 0.45, 0.59), (0.01, -0.05, 0.07), "undetermined"),
        ((0.80, None, None), (0.01, None, None), "undetermined"),
    ],
)
def test_pluralism_verdicts(
    blind: tuple[float, float | None, float | None],
    gap: tuple[float, float | None, float | None],
    verdict: str,
) -> None:
    board = _board(
        [
            BLIND_ROW | dict(zip(("accuracy", "ci_low", "ci_high"), blind, strict=True)),
            AWARE_ROW
            | dict(zip(("gap", "gap_ci_low", "gap_ci_high"), gap, strict=True))
            | {"accuracy": 0.8},
        ]
    )
    found, sentence = _verdict(board, " (y_w is the shorter answer in 90% of pairs)")
    assert found == verdict
    if verdict == "not-pluralistic":
        assert "do not test pluralism" in sentence and "shorter answer in 90%" in sentence

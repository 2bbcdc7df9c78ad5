"""The align stage: load the pairs, run every method, write the leaderboard, slices and figure
into `align/`, and record them in the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.align.config import AlignConfig
from persona_testbed.align.evaluate import (
    Diagnostic,
    MethodRun,
    diagnostics,
    leaderboard,
    run_methods,
    shorter_chosen_share,
    slices,
)
from persona_testbed.align.features import make_embedder
from persona_testbed.align.outputs import leaderboard_markdown
from persona_testbed.align.pairs import TEST_SPLITS, TRAIN, load_align_data
from persona_testbed.contracts import (
    ALIGN_ACCURACY_PNG,
    ALIGN_LEADERBOARD,
    ALIGN_LEADERBOARD_MD,
    ALIGN_SLICES,
    PERSONAS,
    PREFERENCES,
)
from persona_testbed.estimation import RESAMPLES
from persona_testbed.prompts import Embedder
from persona_testbed.run import RunDir

STAGE = "align"
NOTES = (
    "every pair is scored in both answer orders (A = y_w, B = y_l and the reverse): a method "
    "that follows the position scores 0.5; a probability of exactly 0.5 counts half right",
    "log-loss: mean of -log P(preferred answer) over both orders, probabilities clipped to "
    "[1e-6, 1 - 1e-6]",
    "95% CIs: cluster bootstrap over personas, two-way with the prompts the pairs share "
    "(docs/statistics.md); the gap is paired (the same pairs for both methods)",
)


@dataclass(frozen=True)
class AlignResult:
    run: Path
    outputs: list[str]
    leaderboard: pl.DataFrame
    slices: pl.DataFrame
    diagnostics: list[Diagnostic]
    runs: list[MethodRun]


def _counts(frame: pl.DataFrame) -> dict[str, int]:
    return {split: int((frame["split"] == split).sum()) for split in (TRAIN, *TEST_SPLITS)}


def run_align_stage(
    run: RunDir,
    config: AlignConfig,
    *,
    embedder: Embedder | None = None,
    force: bool = False,
) -> AlignResult:
    """Evaluate every configured method on the run's preference pairs (outputs under
    `align/`). `embedder` replaces the one the config names (tests inject a cheap one)."""
    data = load_align_data(run.path)
    chosen = embedder if embedder is not None else make_embedder(config.embedder)
    manifest_config = config.manifest_config(chosen.name)
    inputs = [PREFERENCES.file(run)] + ([PERSONAS.file(run)] if PERSONAS.exists(run) else [])
    # Imported here, not at the top: matplotlib loads when a figure is drawn, not on import.
    from persona_testbed.align import plots

    with run.stage(STAGE, manifest_config, seed=config.seed, inputs=inputs, force=force) as stage:
        runs, splits = run_methods(data, config, chosen)
        board = leaderboard(runs, config)
        sliced = slices(runs, data, config)
        found = diagnostics(board, data)
        resamples = "" if config.resamples == RESAMPLES else f" ({config.resamples} resamples)"
        notes = [*NOTES, *data.notes, *splits.notes]
        notes.append(f"embedder: {chosen.name}{resamples}; seed {config.seed}")
        if not data.has_judge:
            notes.append(
                "no role-play judge row: preferences.parquet has no judge_prefers_chosen values"
            )
        counts = _counts(data.pairs)
        title = (
            f"Preference prediction per persona ({counts[TRAIN]} train, "
            f"{counts['test_seen']} test_seen, {counts['test_unseen']} test_unseen pairs)"
        )
        ALIGN_LEADERBOARD.write(stage, board)
        markdown = leaderboard_markdown(board, found, title=title, notes=notes)
        ALIGN_LEADERBOARD_MD.write(stage, lambda tmp: Path(tmp).write_text(markdown, "utf-8"))
        ALIGN_SLICES.write(stage, sliced)
        name, seed = chosen.name, config.seed
        ALIGN_ACCURACY_PNG.write(
            stage, lambda tmp: plots.accuracy_figure(board, Path(tmp), embedder=name, seed=seed)
        )
        share = shorter_chosen_share(data)
        stats: dict[str, Any] = {
            "pairs": counts,
            "personas": data.pairs["persona_id"].n_unique(),
            "embedder": chosen.name,
            "chosen_shorter_share": share,
            "accuracy": {
                f"{row['method']} / {row['split']}": row["accuracy"]
                for row in board.iter_rows(named=True)
            },
            "diagnostics": {d.split: {"verdict": d.verdict, "sentence": d.sentence} for d in found},
            "notes": {
                f"{r.method} / {split}": r.notes_for(split)
                for r in runs
                for split in TEST_SPLITS
                if r.notes_for(split)
            },
        }
        stage.record.stats.update(stats)
        outputs = list(stage.record.outputs)
    return AlignResult(run.path, outputs, board, sliced, found, runs)

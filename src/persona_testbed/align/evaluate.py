"""The harness: fit every method on the train pairs, predict both answer orders of every test
pair, and score accuracy and log-loss per split with cluster-bootstrap CIs over personas
(crossed with prompts: the pairs of one prompt share its y_l), the paired gap of each
persona-aware method over the persona-blind model, slices by persona attribute, and the
diagnostic of whether the pairs test pluralism at all."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from persona_testbed.align.config import AlignConfig
from persona_testbed.align.features import CachedEmbedder
from persona_testbed.align.methods import (
    PERSONA_BLIND,
    FallbackError,
    MethodContext,
    Probabilities,
    method_info,
)
from persona_testbed.align.pairs import (
    CHOSEN_FIRST,
    JUDGE_COLUMN,
    LABEL,
    TEST_SPLITS,
    TRAIN,
    AlignData,
    method_frame,
    oriented,
)
from persona_testbed.estimation import Estimate, bootstrap_mean
from persona_testbed.prompts import Embedder
from persona_testbed.seeding import child_rng, child_seed

JUDGE = "role-play-judge"
BLIND, AWARE, REFERENCE = "persona-blind", "persona-aware", "reference"
# Log-loss clips probabilities here: one confident mistake costs log(1e6), not infinity.
EPS = 1e-6
# The persona-blind model at or above this accuracy: "near perfect".
NEAR_PERFECT = 0.95

LEADERBOARD_SCHEMA: dict[str, type[pl.DataType]] = {
    "method": pl.String,
    "kind": pl.String,
    "split": pl.String,
    "pairs": pl.Int64,
    "personas": pl.Int64,
    "accuracy": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "log_loss": pl.Float64,
    "log_loss_ci_low": pl.Float64,
    "log_loss_ci_high": pl.Float64,
    "gap": pl.Float64,
    "gap_ci_low": pl.Float64,
    "gap_ci_high": pl.Float64,
    "note": pl.String,
}
SLICE_SCHEMA: dict[str, type[pl.DataType]] = {
    "method": pl.String,
    "split": pl.String,
    "slice": pl.String,
    "value": pl.String,
    "accuracy": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "pairs": pl.Int64,
    "personas": pl.Int64,
}
_PREDICTION_COLUMNS = ("split", "pair_id", "persona_id", "prompt_key", "order", LABEL)


@dataclass(frozen=True)
class MethodRun:
    """One method's predictions (split, pair_id, persona_id, prompt_key, order, label, p) and
    what went wrong on the way (fallbacks, rows without a neighbour)."""

    method: str
    kind: str
    predictions: pl.DataFrame
    notes: tuple[str, ...]
    split_notes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def notes_for(self, split: str) -> str | None:
        """The notes of the leaderboard row of `split`."""
        return "; ".join((*self.notes, *self.split_notes.get(split, ()))) or None


@dataclass(frozen=True)
class Splits:
    train: pl.DataFrame
    tests: dict[str, pl.DataFrame]
    notes: tuple[str, ...]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def build_splits(data: AlignData, config: AlignConfig) -> Splits:
    """Every split's pairs frame; the train pairs subsampled (seeded) to max_train_pairs."""
    notes: list[str] = []
    train = oriented(data, TRAIN, child_rng(config.seed, "align/order", TRAIN))
    pair_ids = train["pair_id"].unique().sort()
    if len(pair_ids) > config.max_train_pairs:
        rng = child_rng(config.seed, "align/subsample")
        keep = pair_ids.gather(np.sort(rng.choice(len(pair_ids), config.max_train_pairs, False)))
        train = train.filter(pl.col("pair_id").is_in(keep.implode()))
        notes.append(f"models fit on {config.max_train_pairs:,} of {len(pair_ids):,} train pairs")
    tests = {
        split: oriented(data, split, child_rng(config.seed, "align/order", split))
        for split in TEST_SPLITS
    }
    return Splits(train, tests, tuple(notes))


def _checked(values: object, rows: int) -> tuple[Probabilities, str | None]:
    """A method's predictions as probabilities in [0, 1]; 0.5 everywhere, with the reason,
    when they are not one finite number per row."""
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        return np.full(rows, 0.5), f"predictions are not numbers ({_first_line(exc)}): 0.5"
    if array.shape != (rows,):
        return np.full(rows, 0.5), f"{array.size} predictions for {rows} rows: 0.5"
    if not np.isfinite(array).all():
        return np.full(rows, 0.5), "non-finite predictions: 0.5"
    return np.clip(array, 0.0, 1.0), None


def _predictions(frame: pl.DataFrame, p: Probabilities) -> pl.DataFrame:
    return frame.select(*_PREDICTION_COLUMNS).with_columns(pl.Series("p", p, dtype=pl.Float64))


def run_method(name: str, splits: Splits, context: MethodContext) -> MethodRun:
    """Fit method `name` and predict every test split; never raises for the method's sake: a
    method that cannot fit or predict gives 0.5 and the reason."""
    info = method_info(name)
    notes: list[str] = []
    split_notes: dict[str, tuple[str, ...]] = {}
    fitted = False
    method = None
    try:
        method = info.factory(context)
        method.fit(method_frame(splits.train, train=True))
        fitted = True
    except FallbackError as exc:
        notes.append(str(exc))
    except Exception as exc:  # a plug-in's bug must not take the other methods' rows with it
        notes.append(f"fit failed ({_first_line(exc)}): predicts 0.5")
    frames = []
    for split, frame in splits.tests.items():
        if frame.is_empty():
            continue
        p = np.full(frame.height, 0.5)
        if fitted and method is not None:
            try:
                p, problem = _checked(
                    method.predict(method_frame(frame, train=False)), frame.height
                )
            except Exception as exc:
                problem = f"predict failed ({_first_line(exc)}): 0.5"
            note = getattr(method, "note", None)
            split_notes[split] = tuple(text for text in (problem, note) if text)
        frames.append(_predictions(frame, p))
    kind = AWARE if info.persona_aware else BLIND
    return MethodRun(name, kind, _concat(frames), tuple(notes), split_notes)


def _concat(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    if frames:
        return pl.concat(frames)
    schema = {c: pl.String for c in _PREDICTION_COLUMNS} | {LABEL: pl.Int64, "p": pl.Float64}
    return pl.DataFrame(schema=schema)


def judge_run(data: AlignData, splits: Splits) -> MethodRun:
    """The preference stage's role-play judge as a reference row: its choice of y_w or y_l
    (a hard choice, so no log-loss); a pair it did not judge counts as a tie."""
    judged = data.pairs.select("pair_id", JUDGE_COLUMN)
    frames = []
    for frame in splits.tests.values():
        if frame.is_empty():
            continue
        joined = frame.join(judged, on="pair_id", how="left", maintain_order="left")
        prefers_chosen = joined[JUDGE_COLUMN].cast(pl.Float64).to_numpy()
        chosen_first = (joined["order"] == CHOSEN_FIRST).to_numpy()
        p = np.where(chosen_first, prefers_chosen, 1.0 - prefers_chosen)
        frames.append(_predictions(frame, np.nan_to_num(p, nan=0.5)))
    note = "hard choices of the preference stage's judge: no log-loss"
    return MethodRun(JUDGE, REFERENCE, _concat(frames), (note,))


def run_methods(
    data: AlignData, config: AlignConfig, embedder: Embedder
) -> tuple[list[MethodRun], Splits]:
    """Every configured method (and the judge's reference row) on the same splits."""
    splits = build_splits(data, config)
    context = MethodContext(
        seed=child_seed(config.seed, "align/methods"),
        embedder=embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder),
        min_train_pairs=config.min_train_pairs,
        neighbours=config.neighbours,
    )
    runs = [run_method(name, splits, context) for name in config.methods]
    if config.judge_reference and data.has_judge:
        runs.append(judge_run(data, splits))
    return runs, splits


def pair_scores(run: MethodRun) -> pl.DataFrame:
    """Per pair: accuracy over its two orders (a probability of exactly 0.5 is half right) and
    log-loss (null for the judge's hard choices)."""
    p = pl.col("p")
    right = pl.when(p == 0.5).then(0.5).when((p > 0.5) == (pl.col(LABEL) == 1)).then(1.0)
    loss = -(pl.when(pl.col(LABEL) == 1).then(p).otherwise(1.0 - p).clip(EPS, 1.0 - EPS).log())
    scored = run.predictions.with_columns(
        right.otherwise(0.0).alias("correct"),
        (pl.lit(None, dtype=pl.Float64) if run.kind == REFERENCE else loss).alias("log_loss"),
    )
    return scored.group_by("split", "pair_id", "persona_id", "prompt_key", maintain_order=True).agg(
        pl.col("correct").mean(), pl.col("log_loss").mean()
    )


def _estimate(
    values: pl.Series, frame: pl.DataFrame, config: AlignConfig, *keys: str, logit: bool
) -> Estimate:
    return bootstrap_mean(
        values.to_numpy(),
        child_rng(config.seed, "align/bootstrap", *keys),
        clusters=frame["persona_id"].to_numpy(),
        crossed=frame["prompt_key"].to_numpy(),
        scale="logit" if logit else "identity",
        resamples=config.resamples,
    )


def _empty_row(run: MethodRun, split: str, note: str) -> dict[str, object]:
    row: dict[str, object] = {name: None for name in LEADERBOARD_SCHEMA}
    return row | {"method": run.method, "kind": run.kind, "split": split, "pairs": 0,
                  "personas": 0, "note": note}  # fmt: skip


def leaderboard(runs: Sequence[MethodRun], config: AlignConfig) -> pl.DataFrame:
    """Method x split: accuracy and log-loss with CIs, and the gap persona-aware minus
    persona-blind with its paired cluster-bootstrap CI."""
    scores = {run.method: pair_scores(run) for run in runs}
    blind = next((r.method for r in runs if r.method == PERSONA_BLIND), None)
    rows: list[dict[str, object]] = []
    for split in TEST_SPLITS:
        for run in runs:
            frame = scores[run.method].filter(pl.col("split") == split)
            note = run.notes_for(split)
            if frame.is_empty():
                rows.append(_empty_row(run, split, f"no {split} pairs"))
                continue
            accuracy = _estimate(frame["correct"], frame, config, run.method, split, "accuracy",
                                 logit=True)  # fmt: skip
            row: dict[str, object] = {
                "method": run.method, "kind": run.kind, "split": split, "pairs": frame.height,
                "personas": frame["persona_id"].n_unique(), "accuracy": accuracy.value,
                "ci_low": accuracy.low, "ci_high": accuracy.high, "note": note,
            }  # fmt: skip
            if run.kind != REFERENCE:
                loss = _estimate(frame["log_loss"], frame, config, run.method, split, "log-loss",
                                 logit=False)  # fmt: skip
                row |= {"log_loss": loss.value, "log_loss_ci_low": loss.low,
                        "log_loss_ci_high": loss.high}  # fmt: skip
            if run.kind == AWARE and blind is not None:
                paired = frame.join(
                    scores[blind].filter(pl.col("split") == split).select("pair_id", "correct"),
                    on="pair_id",
                    suffix="_blind",
                )
                difference = paired["correct"] - paired["correct_blind"]
                gap = _estimate(difference, paired, config, run.method, split, "gap", logit=False)
                row |= {"gap": gap.value, "gap_ci_low": gap.low, "gap_ci_high": gap.high}
            rows.append({name: row.get(name) for name in LEADERBOARD_SCHEMA})
    return pl.DataFrame(rows, schema=LEADERBOARD_SCHEMA)


def slices(runs: Sequence[MethodRun], data: AlignData, config: AlignConfig) -> pl.DataFrame:
    """Accuracy per persona attribute value, per method and test split."""
    attributes = [a for a in config.slices if a in data.personas.columns]
    rows: list[dict[str, object]] = []
    if not attributes:
        return pl.DataFrame(rows, schema=SLICE_SCHEMA)
    personas = data.personas.select("persona_id", *attributes)
    for run in runs:
        scored = pair_scores(run).join(personas, on="persona_id", how="left")
        for split in TEST_SPLITS:
            in_split = scored.filter(pl.col("split") == split)
            for attribute in attributes:
                for value in in_split[attribute].drop_nulls().unique().sort().to_list():
                    frame = in_split.filter(pl.col(attribute) == value)
                    estimate = _estimate(frame["correct"], frame, config, run.method, split,
                                         attribute, str(value), logit=True)  # fmt: skip
                    rows.append(
                        {"method": run.method, "split": split, "slice": attribute,
                         "value": str(value), "accuracy": estimate.value,
                         "ci_low": estimate.low, "ci_high": estimate.high,
                         "pairs": frame.height, "personas": frame["persona_id"].n_unique()}
                    )  # fmt: skip
    return pl.DataFrame(rows, schema=SLICE_SCHEMA)


@dataclass(frozen=True)
class Diagnostic:
    """Per test split: a verdict code and the sentence the leaderboard and report show."""

    split: str
    verdict: str  # not-pluralistic, blind-near-perfect, persona-helps, undetermined
    sentence: str


def shorter_chosen_share(data: AlignData) -> float | None:
    """Share of pairs whose y_w has fewer words than its y_l (ties count half)."""
    if data.pairs.is_empty():
        return None
    chosen = data.pairs["chosen"].str.split(" ").list.len()
    rejected = data.pairs["rejected"].str.split(" ").list.len()
    shorter = (chosen < rejected).cast(pl.Float64) + 0.5 * (chosen == rejected).cast(pl.Float64)
    value = shorter.mean()
    return float(value) if isinstance(value, (int, float)) else None


def _fmt(value: object) -> str:
    return "n/a" if not isinstance(value, (int, float)) or math.isnan(value) else f"{value:.3f}"


def diagnostics(board: pl.DataFrame, data: AlignData) -> list[Diagnostic]:
    """Whether the pairs test pluralism, per test split: if the persona-blind model is about
    as accurate as the persona-aware ones (every gap CI reaches 0) while it beats chance (its
    CI above 0.5), what separates y_w from y_l is not the persona; a near-perfect blind model
    says the same, louder."""
    share = shorter_chosen_share(data)
    length = "" if share is None else f" (y_w is the shorter answer in {share:.0%} of pairs)"
    out: list[Diagnostic] = []
    for split in TEST_SPLITS:
        verdict, sentence = _verdict(board.filter(pl.col("split") == split), length)
        out.append(Diagnostic(split, verdict, f"{split}: {sentence}"))
    return out


def _verdict(rows: pl.DataFrame, length: str) -> tuple[str, str]:
    """(verdict code, sentence) of one split's leaderboard rows."""
    blind = rows.filter(pl.col("method") == PERSONA_BLIND)
    aware = rows.filter((pl.col("kind") == AWARE) & pl.col("gap").is_not_null())
    if blind.is_empty() or blind["accuracy"][0] is None:
        return "undetermined", "no persona-blind accuracy, no verdict on pluralism."
    accuracy, low, high = blind["accuracy"][0], blind["ci_low"][0], blind["ci_high"][0]
    shown = f"{_fmt(accuracy)} [{_fmt(low)}, {_fmt(high)}]"
    gaps_low = aware["gap_ci_low"].to_list()
    if accuracy >= NEAR_PERFECT:
        return "blind-near-perfect", (
            f"WARNING the persona-blind model is near perfect (accuracy {shown}): y_w differs "
            f"from y_l in ways any reader sees{length}, so these pairs do not test pluralism."
        )
    if aware.is_empty():
        return "undetermined", (
            f"no persona-aware method to compare with the persona-blind model (accuracy "
            f"{shown}); no verdict on pluralism."
        )
    if low is None or any(g is None for g in gaps_low):
        return "undetermined", (
            f"too few personas for confidence intervals (persona-blind accuracy {shown}); no "
            "verdict on pluralism."
        )
    if any(g > 0 for g in gaps_low):
        best = aware.sort("gap", descending=True).row(0, named=True)
        gap = f"{_fmt(best['gap'])} [{_fmt(best['gap_ci_low'])}, {_fmt(best['gap_ci_high'])}]"
        return "persona-helps", (
            f"{best['method']} beats the persona-blind model by {gap}: the pairs reward "
            "knowing the persona."
        )
    if low > 0.5:
        return "not-pluralistic", (
            f"WARNING the persona-blind model is about as accurate as the persona-aware ones "
            f"(accuracy {shown}, every gap CI covers 0) and beats chance: the pairs do not test "
            f"pluralism{length}."
        )
    return "undetermined", (
        f"the persona-blind model does not beat chance (accuracy {shown}) and no persona-aware "
        "method beats it: no verdict on pluralism."
    )

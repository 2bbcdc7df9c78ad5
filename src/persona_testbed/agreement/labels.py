"""The long labels table (one row per annotator x item) and human majority votes.

Human labels arrive in the annotation app's export schema (CSV or Parquet); only `persona_id`,
`item_id`, `annotator` and `label` are needed. Model labels use the same columns plus `p_a`
(probability of answer A), `coverage` (probability mass on the A/B tokens) and `no_label`
("tie" or "undecided" where the model gave no label, the label then being null) and
`choice_method` (logprobs, or constrained: a one-label answer from an endpoint without
log-probabilities, so p_a is 0, 0.5 or 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from persona_testbed.agreement.statistics import CATEGORIES
from persona_testbed.errors import InputError

REQUIRED_COLUMNS: tuple[str, ...] = ("persona_id", "item_id", "annotator", "label")
LABEL_COLUMNS: tuple[str, ...] = (
    "study_id",
    "annotator",
    "annotator_kind",
    "persona_id",
    "item_id",
    "question",
    "answer_a",
    "answer_b",
    "label",
    "justification",
    "displayed_order",
    "answered_at",
)
MODEL_LABEL_COLUMNS: tuple[str, ...] = (
    *LABEL_COLUMNS,
    "p_a",
    "coverage",
    "no_label",
    "choice_method",
)
MAJORITY_ANNOTATOR = "human-majority"
HUMAN = "human"
MODEL = "model"
MAJORITY = "majority"


def read_labels(path: Path) -> pl.DataFrame:
    """Read and check a labels file (CSV or Parquet, by suffix); rows without an
    `annotator_kind` are human labels."""
    if not path.is_file():
        raise InputError(f"{path}: labels file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
        elif suffix == ".parquet":
            frame = pl.read_parquet(path)
        else:
            raise InputError(f"{path}: unsupported labels file type '{suffix}' (.csv or .parquet)")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: cannot read labels ({str(exc).splitlines()[0]})") from None
    if "annotator_kind" not in frame.columns:
        frame = frame.with_columns(pl.lit(HUMAN).alias("annotator_kind"))
    frame = frame.with_columns(pl.col("annotator_kind").cast(pl.String).fill_null(HUMAN))
    return validate_labels(frame, str(path))


def validate_labels(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Check the required columns and values; labels are normalised to "A"/"B".

    `source` names the table in error messages (a file path, or "labels")."""
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(repr(m) for m in missing)}")
    try:
        frame = frame.with_columns(pl.col(name).cast(pl.String) for name in REQUIRED_COLUMNS)
    except pl.exceptions.PolarsError:
        columns = ", ".join(REQUIRED_COLUMNS)
        raise InputError(f"{source}: columns {columns} must hold text") from None
    frame = frame.with_columns(pl.col("label").str.strip_chars().str.to_uppercase())
    for row_number, row in enumerate(frame.select(REQUIRED_COLUMNS).iter_rows(named=True), 1):
        for name in REQUIRED_COLUMNS:
            if row[name] is None or not row[name].strip():
                raise InputError(f"{source}: row {row_number}: empty '{name}'")
        if row["label"] not in CATEGORIES:
            raise InputError(
                f"{source}: row {row_number}: label {row['label']!r} is not A or B "
                "(answer_a / answer_b in canonical order)"
            )
    repeated = frame.with_row_index("row").filter(
        ~pl.struct("annotator", "persona_id", "item_id").is_first_distinct()
    )
    if repeated.height:
        first = repeated.row(0, named=True)
        raise InputError(
            f"{source}: row {first['row'] + 1}: annotator '{first['annotator']}' labels item "
            f"'{first['item_id']}' of persona '{first['persona_id']}' more than once"
        )
    return frame


@dataclass(frozen=True)
class Majority:
    """Majority-vote labels of the human annotators, as one annotator's rows."""

    labels: pl.DataFrame
    threshold: int | None
    items: int
    items_with_majority: int


def majority_vote(
    labels: pl.DataFrame, threshold: int | None = None, *, carry: Sequence[str] = ()
) -> Majority:
    """Per (persona, item), the label chosen by at least `threshold` annotators and by strictly
    more than chose the other; with no threshold, by more than half of them. Items without a
    majority (ties, too few votes) get no majority label. The annotation app exports its
    majorities with this rule.

    `carry` names columns with one value per item (e.g. `question`) to keep in the rows."""
    if threshold is not None and threshold < 1:
        raise InputError(f"majority threshold {threshold}: must be at least 1")
    votes = labels.group_by("persona_id", "item_id", *carry, maintain_order=True).agg(
        pl.len().alias("votes"),
        (pl.col("label") == "A").sum().alias("votes_a"),
        (pl.col("label") == "B").sum().alias("votes_b"),
    )
    needed = (
        pl.lit(threshold) if threshold is not None else (pl.col("votes") // 2 + 1).cast(pl.UInt32)
    )
    winner = (
        pl.when((pl.col("votes_a") >= needed) & (pl.col("votes_a") > pl.col("votes_b")))
        .then(pl.lit("A"))
        .when((pl.col("votes_b") >= needed) & (pl.col("votes_b") > pl.col("votes_a")))
        .then(pl.lit("B"))
    )
    decided = (
        votes.with_columns(winner.alias("label"))
        .filter(pl.col("label").is_not_null())
        .select(
            pl.lit(MAJORITY_ANNOTATOR).alias("annotator"),
            pl.lit(MAJORITY).alias("annotator_kind"),
            "persona_id",
            "item_id",
            *carry,
            "label",
            pl.col("votes").cast(pl.Int64),
            pl.col("votes_a").cast(pl.Int64),
            pl.col("votes_b").cast(pl.Int64),
        )
    )
    return Majority(decided, threshold, votes.height, decided.height)

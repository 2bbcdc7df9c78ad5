"""The preference pairs as the align task sees them, and the pairs frame every method gets.

`preferences.parquet` holds one row per (persona, prompt): y_w = `chosen`, y_l = `rejected`.
Each pair is shown to a method twice, once in each answer order, so a method that follows the
position of an answer scores exactly chance:

The pairs frame (a polars DataFrame), one row per pair and order:

| column | type | what it is |
| --- | --- | --- |
| `pair_id` | text | the preference pair |
| `persona_id` | text | the persona whose preference it is |
| `persona_text` | text | the persona card (personas.parquet's canonical card, else the pair's) |
| `prompt_key` | text | the prompt's id (its text where the pairs have no `prompt_id`) |
| `prompt` | text | the prompt |
| `answer_a`, `answer_b` | text | the two answers in this row's order |
| `split` | text | `train`, `test_seen` or `test_unseen` |
| attributes | text | each one personas.parquet has (`sex`, `religion`, ...), `age bracket` |
| `label` | integer | 1 when A is the preferred answer; only in the frame given to `fit` |

The rows come in a seeded random order, and the frame given to `predict` has no `label` (nor
anything else that says which answer is y_w).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from persona_testbed.contracts import (
    AGE_BRACKET,
    ATTRIBUTES,
    PERSONAS,
    PREFERENCES,
    age_bracket,
    persona_texts,
)
from persona_testbed.errors import InputError

TRAIN, TEST_SEEN, TEST_UNSEEN = "train", "test_seen", "test_unseen"
TEST_SPLITS: tuple[str, ...] = (TEST_SEEN, TEST_UNSEEN)
CHOSEN_FIRST, REJECTED_FIRST = "chosen_first", "rejected_first"
LABEL = "label"
JUDGE_COLUMN = "judge_prefers_chosen"
PAIR_COLUMNS: tuple[str, ...] = (
    "pair_id",
    "persona_id",
    "persona_text",
    "prompt_key",
    "prompt",
    "answer_a",
    "answer_b",
    "split",
)


@dataclass(frozen=True)
class AlignData:
    """What an align run reads: the usable pairs (one row per pair, `chosen`/`rejected`), the
    personas' attributes (persona_id, attributes, `age bracket`) and notes on what was left
    out."""

    pairs: pl.DataFrame
    personas: pl.DataFrame
    notes: tuple[str, ...]

    @property
    def attributes(self) -> tuple[str, ...]:
        """The persona attribute columns present (Appendix A order, then the age bracket)."""
        return tuple(c for c in (*ATTRIBUTES, AGE_BRACKET) if c in self.personas.columns)

    @property
    def has_judge(self) -> bool:
        return JUDGE_COLUMN in self.pairs.columns and self.pairs[JUDGE_COLUMN].null_count() < (
            self.pairs.height
        )


def _text(frame: pl.DataFrame, name: str) -> pl.Expr:
    if name in frame.columns:
        return pl.col(name).cast(pl.String)
    return pl.lit(None, dtype=pl.String)


def load_personas(run: Path) -> pl.DataFrame:
    """persona_id and the attributes (as text) of the run's personas; only persona_id when the
    run has no personas.parquet (then there are no slices, and the group baseline compares
    persona cards)."""
    if not PERSONAS.exists(run):
        return pl.DataFrame(schema={"persona_id": pl.String})
    frame = PERSONAS.read(run)
    present = [a for a in ATTRIBUTES if a in frame.columns]
    personas = frame.select(
        pl.col("persona_id").cast(pl.String), *(pl.col(a).cast(pl.String) for a in present)
    )
    if "age" in frame.columns:
        ages = frame.get_column("age").cast(pl.Int64, strict=False).to_list()
        personas = personas.with_columns(
            pl.Series(AGE_BRACKET, [age_bracket(a) for a in ages], dtype=pl.String)
        )
    return personas.unique("persona_id", keep="first", maintain_order=True)


def load_align_data(run: Path) -> AlignData:
    """The run's usable pairs and personas; one line when there is nothing to train on."""
    path = PREFERENCES.file(run)
    raw = PREFERENCES.read(run)
    if "split" not in raw.columns:
        raise InputError(
            f"{path}: no 'split' column (align trains on 'train' and tests on 'test_seen' / "
            "'test_unseen' pairs)"
        )
    cards = persona_texts(run)
    pairs = raw.select(
        pl.col("pair_id").cast(pl.String),
        pl.col("persona_id").cast(pl.String),
        pl.coalesce(_text(raw, "prompt_id"), pl.col("prompt").cast(pl.String)).alias("prompt_key"),
        pl.col("prompt").cast(pl.String),
        pl.col("chosen").cast(pl.String),
        pl.col("rejected").cast(pl.String),
        pl.col("split").cast(pl.String),
        _text(raw, "persona_text").alias("pair_persona_text"),
        *([pl.col(JUDGE_COLUMN).cast(pl.Boolean)] if JUDGE_COLUMN in raw.columns else []),
    )
    card = pl.col("persona_id").replace_strict(cards, default=None, return_dtype=pl.String)
    pairs = pairs.with_columns(
        pl.coalesce(card, pl.col("pair_persona_text"), pl.lit("")).alias("persona_text")
    ).drop("pair_persona_text")
    usable = (
        pl.col("chosen").str.strip_chars().str.len_chars().fill_null(0).gt(0)
        & pl.col("rejected").str.strip_chars().str.len_chars().fill_null(0).gt(0)
        & pl.col("chosen").ne_missing(pl.col("rejected"))
        & pl.col("split").is_in([TRAIN, *TEST_SPLITS])
    )
    kept = pairs.filter(usable)
    notes: list[str] = []
    if kept.height < pairs.height:
        notes.append(
            f"{pairs.height - kept.height} of {pairs.height} pairs left out (an empty answer, "
            "y_w equal to y_l, or a split other than train / test_seen / test_unseen)"
        )
    if kept.filter(pl.col("split") == TRAIN).is_empty():
        # As with too few train pairs: every model predicts 0.5 and the outputs say why (a
        # small model's preference run may keep no train pair; that is a result, not an error).
        notes.append("no usable pairs in the 'train' split: the models have nothing to fit")
    personas = load_personas(run)
    if not PERSONAS.exists(run):
        notes.append("no personas.parquet: no attribute slices; the group baseline compares cards")
    return AlignData(pairs=kept, personas=personas, notes=tuple(notes))


def oriented(data: AlignData, split: str, rng: np.random.Generator) -> pl.DataFrame:
    """The pairs frame of `split` with `order` and `label`: every pair in both orders, with
    the persona attributes, rows shuffled (the row position must not tell the order)."""
    pairs = data.pairs.filter(pl.col("split") == split)
    base = pairs.select("pair_id", "persona_id", "persona_text", "prompt_key", "prompt", "split")
    first = base.with_columns(
        pairs["chosen"].alias("answer_a"),
        pairs["rejected"].alias("answer_b"),
        pl.lit(CHOSEN_FIRST).alias("order"),
        pl.lit(1, dtype=pl.Int64).alias(LABEL),
    )
    second = base.with_columns(
        pairs["rejected"].alias("answer_a"),
        pairs["chosen"].alias("answer_b"),
        pl.lit(REJECTED_FIRST).alias("order"),
        pl.lit(0, dtype=pl.Int64).alias(LABEL),
    )
    both = pl.concat([first, second]).select(*PAIR_COLUMNS, "order", LABEL)
    attributes = data.personas.select("persona_id", *data.attributes)
    frame = both.join(attributes, on="persona_id", how="left", maintain_order="left")
    return frame[rng.permutation(frame.height).tolist()] if frame.height else frame


def method_frame(frame: pl.DataFrame, *, train: bool) -> pl.DataFrame:
    """What a method sees of an oriented frame: `fit` gets the label, `predict` does not;
    neither gets the order."""
    return frame.drop("order") if train else frame.drop("order", LABEL)

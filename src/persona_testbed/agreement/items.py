"""Items for the model/human agreement study: (persona, question, answer A, answer B).

From a run, an item is a preference pair: answer A = `chosen` (y_w), answer B = `rejected`
(y_l), item_id = `pair_id` (the annotation app uses the same id, so human labels match model
labels by `item_id`). The persona card is the canonical text of `personas.parquet`, or the
pair's `persona_text` where the persona is not there.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from persona_testbed.agreement.annotator import ITEM_COLUMNS
from persona_testbed.census.persona import Persona
from persona_testbed.errors import InputError
from persona_testbed.run.read import read_parquet
from persona_testbed.seeding import child_rng

PREFERENCE_COLUMNS = ("pair_id", "persona_id", "prompt", "chosen", "rejected")


def persona_texts(path: Path) -> dict[str, str]:
    """persona_id -> canonical persona card, from personas.parquet."""
    frame = read_parquet(path, "personas")
    if "persona_id" not in frame.columns:
        raise InputError(f"{path}: missing column 'persona_id'")
    texts: dict[str, str] = {}
    for row_number, row in enumerate(frame.iter_rows(named=True), start=1):
        try:
            texts[str(row["persona_id"])] = Persona.from_row(row).to_text()
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"{path}: row {row_number}: invalid persona ({first})") from None
    return texts


def run_items(run: Path, split: str | None = None) -> pl.DataFrame:
    """Every usable preference pair of a run as an item (columns ITEM_COLUMNS + split)."""
    path = run / "preferences.parquet"
    pairs = read_parquet(path, "preference pairs")
    missing = [name for name in PREFERENCE_COLUMNS if name not in pairs.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(repr(m) for m in missing)}")
    if "split" not in pairs.columns:
        pairs = pairs.with_columns(pl.lit(None, dtype=pl.String).alias("split"))
    if split is not None:
        pairs = pairs.filter(pl.col("split") == split)
    if "persona_text" not in pairs.columns:
        pairs = pairs.with_columns(pl.lit(None, dtype=pl.String).alias("persona_text"))
    # Pairs whose generation failed (an empty answer) cannot be judged.
    pairs = pairs.filter(
        pl.all_horizontal(
            pl.col(name).cast(pl.String).str.strip_chars().str.len_chars() > 0
            for name in PREFERENCE_COLUMNS
        )
    )
    personas_path = run / "personas.parquet"
    texts = persona_texts(personas_path) if personas_path.is_file() else {}
    items = pairs.select(
        pl.col("persona_id").cast(pl.String),
        pl.col("persona_id")
        .cast(pl.String)
        .replace_strict(texts, default=None, return_dtype=pl.String)
        .fill_null(pl.col("persona_text").cast(pl.String))
        .alias("persona_text"),
        pl.col("pair_id").cast(pl.String).alias("item_id"),
        pl.col("prompt").cast(pl.String).alias("question"),
        pl.col("chosen").cast(pl.String).alias("answer_a"),
        pl.col("rejected").cast(pl.String).alias("answer_b"),
        pl.col("split").cast(pl.String),
    )
    repeated = items.filter(pl.col("item_id").is_duplicated())
    if repeated.height:
        raise InputError(f"{path}: pair_id '{repeated['item_id'][0]}' is not unique")
    no_card = items.filter(pl.col("persona_text").is_null())
    if no_card.height:
        raise InputError(
            f"{path}: persona '{no_card['persona_id'][0]}' has no persona_text and is not in "
            f"{personas_path}"
        )
    return items


def sample_items(
    items: pl.DataFrame, *, personas: int | None, per_persona: int | None, seed: int
) -> pl.DataFrame:
    """A seeded sample of `personas` personas and `per_persona` items of each (None: all)."""
    ids = sorted(items["persona_id"].unique().to_list())
    if personas is not None and personas < len(ids):
        picked = child_rng(seed, "models-personas").choice(len(ids), size=personas, replace=False)
        ids = [ids[i] for i in sorted(picked)]
    chosen = []
    for persona_id in ids:
        own = items.filter(pl.col("persona_id") == persona_id).sort("item_id")
        if per_persona is not None and per_persona < own.height:
            picked = child_rng(seed, "models-items", persona_id).choice(
                own.height, size=per_persona, replace=False
            )
            own = own[sorted(int(i) for i in picked)]
        chosen.append(own)
    return pl.concat(chosen) if chosen else items.clear()


def items_for_humans(
    humans: pl.DataFrame, source: str, run_item_frame: pl.DataFrame | None, texts: dict[str, str]
) -> pl.DataFrame:
    """The items the humans labelled, matched to the run's pairs by `item_id` (= pair_id).

    An item that is not among the run's pairs is taken from the labels file itself
    (`question`, `answer_a`, `answer_b`) with the persona card of personas.parquet."""
    labelled = humans.select("persona_id", "item_id").unique(maintain_order=True)
    known = (
        run_item_frame.drop("split", strict=False)
        if run_item_frame is not None
        else pl.DataFrame(schema=dict.fromkeys(ITEM_COLUMNS, pl.String))
    )
    matched = labelled.join(known, on="item_id", how="left", suffix="_run")
    clash = matched.filter(
        pl.col("persona_id_run").is_not_null() & (pl.col("persona_id_run") != pl.col("persona_id"))
    )
    if clash.height:
        row = clash.row(0, named=True)
        raise InputError(
            f"{source}: item '{row['item_id']}' belongs to persona '{row['persona_id_run']}' in "
            f"preferences.parquet, not '{row['persona_id']}'"
        )
    _check_same_answers(humans, known, source)
    content = _content_from_labels(humans)
    rows = []
    for row in matched.iter_rows(named=True):
        if row["persona_id_run"] is None:
            extra = content.get((row["persona_id"], row["item_id"]))
            card = texts.get(row["persona_id"])
            if extra is None or card is None:
                raise InputError(
                    f"{source}: item '{row['item_id']}' of persona '{row['persona_id']}' is not "
                    "in preferences.parquet and the labels file does not give its question, "
                    "answers and a persona in personas.parquet"
                )
            row.update(extra, persona_text=card)
        rows.append({name: row[name] for name in ITEM_COLUMNS})
    return pl.DataFrame(rows, schema=dict.fromkeys(ITEM_COLUMNS, pl.String))


def _content_from_labels(humans: pl.DataFrame) -> dict[tuple[str, str], dict[str, str]]:
    fields = ("question", "answer_a", "answer_b")
    if any(name not in humans.columns for name in fields):
        return {}
    content: dict[tuple[str, str], dict[str, str]] = {}
    for row in humans.iter_rows(named=True):
        if all(row[name] for name in fields):
            content.setdefault(
                (row["persona_id"], row["item_id"]), {name: str(row[name]) for name in fields}
            )
    return content


def _check_same_answers(humans: pl.DataFrame, known: pl.DataFrame, source: str) -> None:
    """Labels are in canonical order (A = chosen); answers that differ from the run's pair
    would make "A" mean something else, so they stop the stage."""
    if "answer_a" not in humans.columns or known.is_empty():
        return
    both = humans.select("item_id", "answer_a").join(
        known.select("item_id", pl.col("answer_a").alias("run_a")), on="item_id", how="inner"
    )
    differs = both.filter(
        pl.col("answer_a").is_not_null()
        & (pl.col("answer_a").str.strip_chars() != pl.col("run_a").str.strip_chars())
    )
    if differs.height:
        raise InputError(
            f"{source}: answer_a of item '{differs['item_id'][0]}' differs from the pair's chosen "
            "answer in preferences.parquet (labels must be in canonical order: A = chosen)"
        )

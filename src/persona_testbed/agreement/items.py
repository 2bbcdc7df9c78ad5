"""Items for the model/human agreement study: (persona, question, answer A, answer B).

From a run, the items are its preference pairs (`contracts.preference_items`, the mapping the
annotation app uses too, so human labels match model labels by `item_id`); here: sampling them,
and matching the items humans labelled to the run's pairs.
"""

from __future__ import annotations

import polars as pl

from persona_testbed.contracts import ITEM_COLUMNS, PERSONAS, PREFERENCES
from persona_testbed.errors import InputError
from persona_testbed.seeding import child_rng


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
    (`question`, `answer_a`, `answer_b`) with the persona card of the run's personas."""
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
            f"{PREFERENCES.path}, not '{row['persona_id']}'"
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
                    f"in {PREFERENCES.path} and the labels file does not give its question, "
                    f"answers and a persona in {PERSONAS.path}"
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
            f"answer in {PREFERENCES.path} (labels must be in canonical order: A = chosen)"
        )

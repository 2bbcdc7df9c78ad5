"""Answers out of the database: the labels table `persona agreement` reads, and majorities."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
from sqlalchemy import select

from persona_testbed.annotate.db import Database
from persona_testbed.annotate.models import Answer, Item, Slot, Study, StudyPersona
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.run.atomic import write_with_atomic

# Contract 7 (human labels): one row per answered item, answers in canonical order.
LABEL_SCHEMA: dict[str, type[pl.DataType]] = {
    "study_id": pl.String,
    "annotator": pl.String,
    "annotator_kind": pl.String,
    "persona_id": pl.String,
    "item_id": pl.String,
    "question": pl.String,
    "answer_a": pl.String,
    "answer_b": pl.String,
    "label": pl.String,
    "justification": pl.String,
    "displayed_order": pl.String,
    "answered_at": pl.String,
}
MAJORITY_ANNOTATOR = "human-majority"  # persona_testbed.agreement.MAJORITY_ANNOTATOR
MAJORITY_SCHEMA: dict[str, type[pl.DataType]] = {
    "study_id": pl.String,
    "annotator": pl.String,
    "annotator_kind": pl.String,
    "persona_id": pl.String,
    "item_id": pl.String,
    "question": pl.String,
    "answer_a": pl.String,
    "answer_b": pl.String,
    "label": pl.String,
    "votes": pl.Int64,
    "votes_a": pl.Int64,
    "votes_b": pl.Int64,
}


def resolve_study(database: Database, study_id: str | None) -> Study:
    """The study named, or the only study in the database."""
    with database.read() as session:
        if study_id is not None:
            study = session.scalar(select(Study).where(Study.study_id == study_id))
            if study is None:
                raise PersonaError(f"database {database.display}: no study '{study_id}'")
            return study
        studies = list(session.scalars(select(Study).order_by(Study.id)))
    if len(studies) == 1:
        return studies[0]
    if not studies:
        raise PersonaError(f"database {database.display}: no study yet (run create-study)")
    names = ", ".join(study.study_id for study in studies)
    raise PersonaError(f"database {database.display}: several studies ({names}); pass --study")


def labels(database: Database, study: Study) -> pl.DataFrame:
    """Every stored answer of a study in the human-labels schema (contract 7)."""
    query = (
        select(
            Slot.participant_id,
            StudyPersona.persona_id,
            Item.item_id,
            Item.question,
            Item.answer_a,
            Item.answer_b,
            Answer.label,
            Answer.justification,
            Answer.displayed_order,
            Answer.answered_at,
        )
        .join(Slot, Slot.id == Answer.slot_pk)
        .join(Item, Item.id == Answer.item_pk)
        .join(StudyPersona, StudyPersona.id == Item.persona_pk)
        .where(Slot.study_pk == study.id)
        .order_by(StudyPersona.ordinal, Slot.ordinal, Item.item_id)
    )
    with database.read() as session:
        rows = session.execute(query).all()
    records = [
        {
            "study_id": study.study_id,
            "annotator": row.participant_id,
            "annotator_kind": "human",
            "persona_id": row.persona_id,
            "item_id": row.item_id,
            "question": row.question,
            "answer_a": row.answer_a,
            "answer_b": row.answer_b,
            "label": row.label,
            "justification": row.justification,
            "displayed_order": row.displayed_order,
            "answered_at": row.answered_at.isoformat(timespec="seconds"),
        }
        for row in rows
    ]
    return pl.DataFrame(records, schema=LABEL_SCHEMA)


def majority_labels(labels_frame: pl.DataFrame, threshold: int) -> pl.DataFrame:
    """Items where at least `threshold` annotators chose the same answer, and strictly more than
    chose the other (a tie is no majority), as one `human-majority` annotator's labels (kind
    `majority`): the agreement stage's majority vote."""
    # Imported here: the agreement package loads scikit-learn, which serving a study never needs.
    from persona_testbed.agreement import majority_vote

    carried = ["study_id", "question", "answer_a", "answer_b"]
    majority = majority_vote(labels_frame, threshold, carry=carried)
    return majority.labels.select(list(MAJORITY_SCHEMA)).cast(MAJORITY_SCHEMA)  # type: ignore[arg-type]


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): the
# participant-written text is prefixed with a quote so it stays text.
FORMULA_START = r"^[=+\-@\t\r]"


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell that a spreadsheet would run as a formula, prefixed with `'`."""
    columns = [
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    ]
    return frame.with_columns(columns) if columns else frame


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """Write CSV or Parquet (by suffix) atomically: no half-written file ever looks complete."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        write_with_atomic(path, neutralise_formulas(frame).write_csv)
    elif suffix == ".parquet":
        write_with_atomic(path, frame.write_parquet)
    else:
        raise InputError(f"{path}: unsupported export type '{suffix}' (use .csv or .parquet)")


def table_bytes(frame: pl.DataFrame, kind: str) -> bytes:
    """The table as a CSV or Parquet download."""
    buffer = io.BytesIO()
    if kind == "csv":
        neutralise_formulas(frame).write_csv(buffer)
    else:
        frame.write_parquet(buffer)
    return buffer.getvalue()

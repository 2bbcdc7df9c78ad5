"""Progress of a study, per persona and per participant, for the admin dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import func, select

from persona_testbed.annotate.db import Database
from persona_testbed.annotate.models import Answer, Slot, Study, StudyPersona
from persona_testbed.annotate.results import labels, majority_labels


@dataclass(frozen=True)
class ParticipantProgress:
    participant_id: str
    persona_id: str
    entry: str | None
    prolific_pid: str | None
    answered: int
    claimed_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class PersonaProgress:
    persona_id: str
    slots: int
    claimed: int
    completed: int
    answers: int
    expected_answers: int
    majority_items: int


@dataclass(frozen=True)
class StudyProgress:
    study_id: str
    questions: int
    majority: int
    personas: list[PersonaProgress]
    participants: list[ParticipantProgress]

    @property
    def completed(self) -> int:
        return sum(p.completed for p in self.personas)

    @property
    def slots(self) -> int:
        return sum(p.slots for p in self.personas)

    @property
    def answers(self) -> int:
        return sum(p.answers for p in self.personas)

    @property
    def majority_items(self) -> int:
        return sum(p.majority_items for p in self.personas)


def study_progress(database: Database, study: Study, majority: int | None = None) -> StudyProgress:
    threshold = study.majority if majority is None else majority
    answers_per_slot = (
        select(Answer.slot_pk, func.count().label("answered")).group_by(Answer.slot_pk).subquery()
    )
    query = (
        select(Slot, StudyPersona.persona_id, func.coalesce(answers_per_slot.c.answered, 0))
        .join(StudyPersona, StudyPersona.id == Slot.persona_pk)
        .outerjoin(answers_per_slot, answers_per_slot.c.slot_pk == Slot.id)
        .where(Slot.study_pk == study.id)
        .order_by(Slot.ordinal)
    )
    with database.read() as session:
        persona_ids = list(
            session.scalars(
                select(StudyPersona.persona_id)
                .where(StudyPersona.study_pk == study.id)
                .order_by(StudyPersona.ordinal)
            )
        )
        rows = session.execute(query).all()
    participants = [
        ParticipantProgress(
            participant_id=slot.participant_id,
            persona_id=persona_id,
            entry=slot.entry,
            prolific_pid=slot.prolific_pid,
            answered=int(answered),
            claimed_at=slot.claimed_at,
            completed_at=slot.completed_at,
        )
        for slot, persona_id, answered in rows
    ]
    majorities = majority_labels(labels(database, study), threshold)
    majority_counts = dict(majorities.group_by("persona_id").len().iter_rows())
    personas = []
    for persona_id in persona_ids:
        mine = [p for p in participants if p.persona_id == persona_id]
        personas.append(
            PersonaProgress(
                persona_id=persona_id,
                slots=len(mine),
                claimed=sum(p.claimed_at is not None for p in mine),
                completed=sum(p.completed_at is not None for p in mine),
                answers=sum(p.answered for p in mine),
                expected_answers=len(mine) * study.questions_per_participant,
                majority_items=int(majority_counts.get(persona_id, 0)),
            )
        )
    return StudyProgress(
        study_id=study.study_id,
        questions=study.questions_per_participant,
        majority=threshold,
        personas=personas,
        participants=participants,
    )


def participants_table(progress: StudyProgress) -> pl.DataFrame:
    """One row per participant slot (for paying and following up on Prolific)."""
    return pl.DataFrame(
        [
            {
                "participant_id": p.participant_id,
                "persona_id": p.persona_id,
                "entry": p.entry,
                "prolific_pid": p.prolific_pid,
                "answered": p.answered,
                "questions": progress.questions,
                "claimed_at": None if p.claimed_at is None else p.claimed_at.isoformat(),
                "completed_at": None if p.completed_at is None else p.completed_at.isoformat(),
            }
            for p in progress.participants
        ],
        schema={
            "participant_id": pl.String,
            "persona_id": pl.String,
            "entry": pl.String,
            "prolific_pid": pl.String,
            "answered": pl.Int64,
            "questions": pl.Int64,
            "claimed_at": pl.String,
            "completed_at": pl.String,
        },
    )

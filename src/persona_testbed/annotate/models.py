"""The study database: SQLAlchemy 2 ORM tables.

A study has personas; each persona has items (a question and two answers) and participant
slots; each slot has a fixed, shuffled sequence of assignments (item + displayed order) and at
most one answer per item. UNIQUE constraints, not application checks, make duplicate answers
and double-assigned Prolific participants impossible even under concurrent requests.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = "1"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC (SQLite has no time zones), read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Server-wide values: the schema version and the secret that signs cookies."""

    __tablename__ = "annotate_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Study(Base):
    __tablename__ = "annotate_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    public_url: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    config_json: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Integer)
    questions_per_participant: Mapped[int] = mapped_column(Integer)
    min_justification: Mapped[int] = mapped_column(Integer)
    majority: Mapped[int] = mapped_column(Integer)
    completion_code: Mapped[str] = mapped_column(String(64))
    prolific_completion_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    admin_token_hash: Mapped[str] = mapped_column(String(64))

    personas: Mapped[list[StudyPersona]] = relationship(
        back_populates="study", order_by="StudyPersona.ordinal"
    )


class StudyPersona(Base):
    __tablename__ = "annotate_personas"
    __table_args__ = (UniqueConstraint("study_pk", "persona_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("annotate_studies.id"), index=True)
    persona_id: Mapped[str] = mapped_column(String(200))
    persona_text: Mapped[str] = mapped_column(Text)
    ordinal: Mapped[int] = mapped_column(Integer)

    study: Mapped[Study] = relationship(back_populates="personas")


class Item(Base):
    """One question with two answers, in canonical order: answer_a = y_w, answer_b = y_l."""

    __tablename__ = "annotate_items"
    __table_args__ = (UniqueConstraint("study_pk", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("annotate_studies.id"), index=True)
    persona_pk: Mapped[int] = mapped_column(ForeignKey("annotate_personas.id"), index=True)
    item_id: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    answer_a: Mapped[str] = mapped_column(Text)
    answer_b: Mapped[str] = mapped_column(Text)


class Slot(Base):
    """One participant place: a persona, an invitation token and the participant's position."""

    __tablename__ = "annotate_slots"
    __table_args__ = (
        UniqueConstraint("study_pk", "ordinal"),
        UniqueConstraint("study_pk", "participant_id"),
        UniqueConstraint("study_pk", "prolific_pid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("annotate_studies.id"), index=True)
    persona_pk: Mapped[int] = mapped_column(ForeignKey("annotate_personas.id"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    participant_id: Mapped[str] = mapped_column(String(64))
    # Invitation token = selector.verifier: look up by selector, compare verifier in constant time.
    token_selector: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    entry: Mapped[str | None] = mapped_column(String(16), nullable=True)  # invite | prolific
    prolific_pid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prolific_study_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prolific_session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Assignment(Base):
    """The item a slot sees at a position, and in which order its two answers are shown."""

    __tablename__ = "annotate_assignments"
    __table_args__ = (
        UniqueConstraint("slot_pk", "position"),
        UniqueConstraint("slot_pk", "item_pk"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_pk: Mapped[int] = mapped_column(ForeignKey("annotate_slots.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    item_pk: Mapped[int] = mapped_column(ForeignKey("annotate_items.id"))
    displayed_order: Mapped[str] = mapped_column(String(2))  # AB: answer_a shown first


class Answer(Base):
    __tablename__ = "annotate_answers"
    __table_args__ = (UniqueConstraint("slot_pk", "item_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_pk: Mapped[int] = mapped_column(ForeignKey("annotate_slots.id"), index=True)
    item_pk: Mapped[int] = mapped_column(ForeignKey("annotate_items.id"))
    label: Mapped[str] = mapped_column(String(1))  # canonical: A = answer_a, B = answer_b
    justification: Mapped[str] = mapped_column(Text)
    displayed_order: Mapped[str] = mapped_column(String(2))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)

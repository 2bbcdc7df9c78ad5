"""A participant's way through a study: entry, instructions, one item at a time, completion.

Every change is one short database transaction; the participant's position is stored, so a
reload, a return visit or a server restart resumes exactly where they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from persona_testbed.annotate.db import Database
from persona_testbed.annotate.models import (
    Answer,
    Assignment,
    Item,
    Slot,
    Study,
    StudyPersona,
    utcnow,
)
from persona_testbed.annotate.study import PROLIFIC_COMPLETE_URL
from persona_testbed.annotate.tokens import InvitationToken, hash_secret, secret_matches

MAX_JUSTIFICATION = 5000
PROLIFIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Compared against when a selector is unknown, so both paths do the same constant-time work.
_DUMMY_HASH = hash_secret("no such invitation")


class AccessProblem(Enum):
    """Why an entry or a page cannot be shown; the error template words each one."""

    BAD_LINK = ("bad_link", 404)
    EXPIRED = ("expired", 410)
    TAKEN = ("taken", 410)
    FULL = ("full", 410)
    BAD_PROLIFIC = ("bad_prolific", 400)
    NO_SESSION = ("no_session", 403)
    BAD_REQUEST = ("bad_request", 400)

    @property
    def kind(self) -> str:
        return self.value[0]

    @property
    def status(self) -> int:
        return self.value[1]


class AccessDenied(Exception):
    def __init__(self, problem: AccessProblem) -> None:
        super().__init__(problem.kind)
        self.problem = problem


@dataclass(frozen=True)
class CurrentItem:
    position: int
    question: str
    first_answer: str
    second_answer: str


@dataclass(frozen=True)
class ParticipantView:
    study_id: str
    participant_id: str
    persona_text: str
    position: int
    total: int
    started: bool
    completed: bool
    min_justification: int
    completion_code: str
    prolific_redirect: str | None
    current: CurrentItem | None


class SubmitStatus(Enum):
    SAVED = "saved"
    ALREADY_ANSWERED = "already_answered"  # a repeated or stale submission: nothing stored
    INVALID = "invalid"


@dataclass(frozen=True)
class SubmitResult:
    status: SubmitStatus
    errors: list[str] = field(default_factory=list)


def _is_expired(study: Study) -> bool:
    return study.expires_at is not None and study.expires_at <= utcnow()


def enter_with_invitation(database: Database, token_text: str) -> int:
    """Check an invitation token and claim its slot; returns the slot's key."""
    token = InvitationToken.parse(token_text)
    if token is None:
        raise AccessDenied(AccessProblem.BAD_LINK)
    with database.write() as session:
        slot = session.scalar(select(Slot).where(Slot.token_selector == token.selector))
        valid = secret_matches(token.verifier, slot.token_hash if slot else _DUMMY_HASH)
        if slot is None or not valid:
            raise AccessDenied(AccessProblem.BAD_LINK)
        if slot.entry == "prolific":
            raise AccessDenied(AccessProblem.TAKEN)
        if slot.claimed_at is None:
            study = session.get_one(Study, slot.study_pk)
            if _is_expired(study):
                raise AccessDenied(AccessProblem.EXPIRED)
            slot.entry = "invite"
            slot.claimed_at = utcnow()
        return slot.id


def _prolific_id(value: str | None, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise AccessDenied(AccessProblem.BAD_PROLIFIC)
        return None
    if not PROLIFIC_ID.match(value):
        raise AccessDenied(AccessProblem.BAD_PROLIFIC)
    return value


def _assign_prolific(
    session: Session, study_id: str, pid: str, prolific_study: str | None, session_id: str | None
) -> int:
    study = session.scalar(select(Study).where(Study.study_id == study_id))
    if study is None:
        raise AccessDenied(AccessProblem.BAD_LINK)
    existing = session.scalar(
        select(Slot.id).where(Slot.study_pk == study.id, Slot.prolific_pid == pid)
    )
    if existing is not None:
        return existing
    if _is_expired(study):
        raise AccessDenied(AccessProblem.EXPIRED)
    # SKIP LOCKED (PostgreSQL) lets simultaneous arrivals take different slots; SQLite runs
    # this transaction under its write lock (BEGIN IMMEDIATE), so it is serial anyway.
    free = session.scalar(
        select(Slot)
        .where(Slot.study_pk == study.id, Slot.entry.is_(None))
        .order_by(Slot.ordinal)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if free is None:
        raise AccessDenied(AccessProblem.FULL)
    free.entry = "prolific"
    free.prolific_pid = pid
    free.prolific_study_id = prolific_study
    free.prolific_session_id = session_id
    free.claimed_at = utcnow()
    session.flush()
    return free.id


def enter_with_prolific(
    database: Database,
    study_id: str,
    prolific_pid: str | None,
    prolific_study_id: str | None,
    session_id: str | None,
) -> int:
    """Give a Prolific participant the next free slot (the same one when they come back)."""
    pid = _prolific_id(prolific_pid, required=True)
    assert pid is not None
    prolific_study = _prolific_id(prolific_study_id, required=False)
    prolific_session = _prolific_id(session_id, required=False)
    try:
        with database.write() as session:
            return _assign_prolific(session, study_id, pid, prolific_study, prolific_session)
    except IntegrityError:
        # The same participant arrived twice at once; the other request won: use its slot.
        with database.write() as session:
            return _assign_prolific(session, study_id, pid, prolific_study, prolific_session)


def load_view(database: Database, slot_pk: int) -> ParticipantView:
    with database.read() as session:
        slot = session.get(Slot, slot_pk)
        if slot is None or slot.entry is None:
            raise AccessDenied(AccessProblem.NO_SESSION)
        study = session.get_one(Study, slot.study_pk)
        persona = session.get_one(StudyPersona, slot.persona_pk)
        current = None
        if slot.completed_at is None:
            row = session.execute(
                select(Assignment, Item)
                .join(Item, Item.id == Assignment.item_pk)
                .where(Assignment.slot_pk == slot.id, Assignment.position == slot.position)
            ).one_or_none()
            if row is not None:
                assignment, item = row
                first, second = (
                    (item.answer_a, item.answer_b)
                    if assignment.displayed_order == "AB"
                    else (item.answer_b, item.answer_a)
                )
                current = CurrentItem(slot.position, item.question, first, second)
        redirect = None
        if slot.entry == "prolific" and study.prolific_completion_code:
            redirect = PROLIFIC_COMPLETE_URL.format(code=study.prolific_completion_code)
        return ParticipantView(
            study_id=study.study_id,
            participant_id=slot.participant_id,
            persona_text=persona.persona_text,
            position=slot.position,
            total=study.questions_per_participant,
            started=slot.started_at is not None,
            completed=slot.completed_at is not None,
            min_justification=study.min_justification,
            completion_code=study.completion_code,
            prolific_redirect=redirect,
            current=current,
        )


def start(database: Database, slot_pk: int) -> None:
    """The participant has read the instructions."""
    with database.write() as session:
        slot = session.get(Slot, slot_pk)
        if slot is None:
            raise AccessDenied(AccessProblem.NO_SESSION)
        if slot.started_at is None:
            slot.started_at = utcnow()


def validate_answer(choice: str | None, justification: str, min_length: int) -> list[str]:
    """Error codes (worded by the item template); empty when the answer can be stored."""
    errors = []
    if choice not in ("1", "2"):
        errors.append("choice_missing")
    if len(justification) < min_length:
        errors.append("justification_short")
    if len(justification) > MAX_JUSTIFICATION:
        errors.append("justification_long")
    return errors


def _save_answer(
    session: Session, slot_pk: int, position: int, choice: str | None, justification: str
) -> SubmitResult:
    slot = session.scalar(select(Slot).where(Slot.id == slot_pk).with_for_update())
    if slot is None:
        raise AccessDenied(AccessProblem.NO_SESSION)
    if slot.completed_at is not None or position < slot.position or slot.started_at is None:
        return SubmitResult(SubmitStatus.ALREADY_ANSWERED)
    if position > slot.position:
        return SubmitResult(SubmitStatus.INVALID, ["stale_page"])
    study = session.get_one(Study, slot.study_pk)
    errors = validate_answer(choice, justification, study.min_justification)
    if errors:
        return SubmitResult(SubmitStatus.INVALID, errors)
    assignment = session.scalar(
        select(Assignment).where(Assignment.slot_pk == slot.id, Assignment.position == position)
    )
    if assignment is None:
        return SubmitResult(SubmitStatus.INVALID, ["stale_page"])
    first_label, second_label = ("A", "B") if assignment.displayed_order == "AB" else ("B", "A")
    session.add(
        Answer(
            slot_pk=slot.id,
            item_pk=assignment.item_pk,
            label=first_label if choice == "1" else second_label,
            justification=justification,
            displayed_order=assignment.displayed_order,
            answered_at=utcnow(),
        )
    )
    # The answer and the position move together: both commit or neither does.
    slot.position = position + 1
    if slot.position >= study.questions_per_participant:
        slot.completed_at = utcnow()
    session.flush()
    return SubmitResult(SubmitStatus.SAVED)


def submit_answer(
    database: Database, slot_pk: int, position: int, choice: str | None, justification: str
) -> SubmitResult:
    """Store the answer to the item at `position`; a repeat of an answered item stores nothing."""
    justification = justification.strip()
    try:
        with database.write() as session:
            return _save_answer(session, slot_pk, position, choice, justification)
    except IntegrityError:
        # UNIQUE(slot, item): a concurrent duplicate of this same answer got there first.
        return SubmitResult(SubmitStatus.ALREADY_ANSWERED)

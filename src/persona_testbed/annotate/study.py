"""Creating a study: pick personas and their items (seeded), make participant slots, store."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from persona_testbed.annotate.db import Database
from persona_testbed.annotate.models import (
    Assignment,
    Item,
    Slot,
    Study,
    StudyPersona,
    utcnow,
)
from persona_testbed.annotate.sources import read_items_file, read_run_items
from persona_testbed.annotate.tokens import (
    InvitationToken,
    hash_secret,
    new_admin_token,
    new_completion_code,
)
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.run.atomic import write_with_atomic
from persona_testbed.seeding import child_rng

STUDY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc={code}"
# Prolific replaces these placeholders in the study URL with each participant's ids.
PROLIFIC_QUERY = (
    "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
)


class StudyConfig(BaseModel):
    """Everything `create-study` decides; stored with the study."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: Path | None = None
    items: Path | None = None
    split: str | None = None
    personas: int = Field(20, ge=1)
    questions: int = Field(10, ge=1)
    per_persona: int = Field(4, ge=1)
    seed: int = Field(0, ge=0)
    min_justification: int = Field(20, ge=0, le=2000)
    majority: int = Field(3, ge=1)
    study_id: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    completion_code: str | None = None
    prolific_completion_code: str | None = None
    expires_in_days: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> StudyConfig:
        if (self.run is None) == (self.items is None):
            raise ValueError("give exactly one of --run DIR or --items FILE")
        if self.study_id is not None and not STUDY_ID_PATTERN.match(self.study_id):
            raise ValueError(
                "--study-id must be letters, digits, '-' or '_' (at most 64, not leading -/_)"
            )
        if not self.public_url.startswith(("http://", "https://")):
            raise ValueError("--public-url must start with http:// or https://")
        return self


@dataclass(frozen=True)
class Invitation:
    participant_id: str
    persona_id: str
    url: str


@dataclass(frozen=True)
class CreatedStudy:
    study_id: str
    personas: int
    questions: int
    invitations: list[Invitation]
    prolific_url: str
    admin_url: str
    completion_code: str
    prolific_completion_code: str | None


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """The study's three draws, each its own named stream (seeding.py)."""
    return (
        child_rng(seed, "study/personas"),
        child_rng(seed, "study/items"),
        child_rng(seed, "study/orders"),
    )


def select_items(
    candidates: pl.DataFrame,
    n_personas: int,
    n_questions: int,
    personas_rng: np.random.Generator,
    items_rng: np.random.Generator,
) -> pl.DataFrame:
    """Choose `n_personas` personas with at least `n_questions` distinct questions, then
    `n_questions` of their items (one per question). Sorted inputs make the draw depend only
    on the seed, not on file order."""
    one_per_question = candidates.sort("persona_id", "item_id").unique(
        subset=["persona_id", "question"], keep="first", maintain_order=True
    )
    counts = one_per_question.group_by("persona_id").len()
    eligible = sorted(counts.filter(pl.col("len") >= n_questions).get_column("persona_id"))
    if len(eligible) < n_personas:
        raise InputError(
            f"only {len(eligible)} persona(s) have at least {n_questions} distinct questions; "
            f"the study needs {n_personas} (lower --personas or --questions)"
        )
    chosen = [eligible[i] for i in personas_rng.choice(len(eligible), n_personas, replace=False)]
    parts = []
    for ordinal, persona_id in enumerate(chosen):
        rows = one_per_question.filter(pl.col("persona_id") == persona_id)
        picks = np.sort(items_rng.choice(rows.height, n_questions, replace=False))
        parts.append(rows[picks.tolist()].with_columns(pl.lit(ordinal).alias("persona_ordinal")))
    selected: pl.DataFrame = pl.concat(parts)
    return selected


def _next_study_id(database: Database) -> str:
    with database.read() as session:
        count = session.scalar(select(func.count()).select_from(Study)) or 0
    return f"study{count + 1}"


def create_study(database: Database, config: StudyConfig) -> CreatedStudy:
    """Store a new study and return its invitation links (tokens are shown only this once)."""
    if config.majority > config.per_persona:
        raise InputError(
            f"--majority {config.majority} is more than --per-persona {config.per_persona}"
        )
    if config.run is not None:
        candidates = read_run_items(config.run, config.split)
        source = f"run {config.run}" + (f" (split {config.split})" if config.split else "")
    else:
        assert config.items is not None
        candidates = read_items_file(config.items)
        source = f"items file {config.items}"
    personas_rng, items_rng, orders_rng = _streams(config.seed)
    chosen = select_items(candidates, config.personas, config.questions, personas_rng, items_rng)

    study_id = config.study_id or _next_study_id(database)
    admin_token = new_admin_token()
    completion_code = (
        config.completion_code or config.prolific_completion_code or new_completion_code()
    )
    created = utcnow()
    public_url = config.public_url.rstrip("/")
    invitations: list[Invitation] = []
    try:
        with database.write() as session:
            study = Study(
                study_id=study_id,
                created_at=created,
                expires_at=None
                if config.expires_in_days is None
                else created + timedelta(days=config.expires_in_days),
                public_url=public_url,
                source=source,
                config_json=json.dumps(config.model_dump(mode="json"), sort_keys=True),
                seed=config.seed,
                questions_per_participant=config.questions,
                min_justification=config.min_justification,
                majority=config.majority,
                completion_code=completion_code,
                prolific_completion_code=config.prolific_completion_code,
                admin_token_hash=hash_secret(admin_token),
            )
            session.add(study)
            session.flush()
            personas: list[StudyPersona] = []
            items_by_persona: list[list[Item]] = []
            for ordinal, group in enumerate(
                chosen.partition_by("persona_ordinal", maintain_order=True)
            ):
                persona = StudyPersona(
                    study_pk=study.id,
                    persona_id=group.get_column("persona_id")[0],
                    persona_text=group.get_column("persona_text")[0],
                    ordinal=ordinal,
                )
                session.add(persona)
                session.flush()
                items = [
                    Item(
                        study_pk=study.id,
                        persona_pk=persona.id,
                        item_id=row["item_id"],
                        question=row["question"],
                        answer_a=row["answer_a"],
                        answer_b=row["answer_b"],
                    )
                    for row in group.iter_rows(named=True)
                ]
                session.add_all(items)
                personas.append(persona)
                items_by_persona.append(items)
            session.flush()
            # Round-robin over personas, so the first N participants cover N personas and
            # Prolific's "next free slot" fills every persona evenly.
            ordinal = 0
            for _round in range(config.per_persona):
                for persona, items in zip(personas, items_by_persona, strict=True):
                    token = InvitationToken.new()
                    slot = Slot(
                        study_pk=study.id,
                        persona_pk=persona.id,
                        ordinal=ordinal,
                        participant_id=f"{study_id}-p{ordinal + 1:03d}",
                        token_selector=token.selector,
                        token_hash=token.verifier_hash,
                        position=0,
                    )
                    session.add(slot)
                    session.flush()
                    # Per participant: the order of the items and, per item, of its answers.
                    order = orders_rng.permutation(len(items))
                    flips = orders_rng.random(len(items)) < 0.5
                    session.add_all(
                        Assignment(
                            slot_pk=slot.id,
                            position=position,
                            item_pk=items[int(index)].id,
                            displayed_order="BA" if flip else "AB",
                        )
                        for position, (index, flip) in enumerate(zip(order, flips, strict=True))
                    )
                    invitations.append(
                        Invitation(
                            slot.participant_id, persona.persona_id, f"{public_url}/i/{token}"
                        )
                    )
                    ordinal += 1
    except IntegrityError:
        raise PersonaError(
            f"study '{study_id}' already exists in {database.display}; choose another --study-id"
        ) from None
    return CreatedStudy(
        study_id=study_id,
        personas=config.personas,
        questions=config.questions,
        invitations=invitations,
        prolific_url=f"{public_url}/prolific/{study_id}?{PROLIFIC_QUERY}",
        admin_url=f"{public_url}/admin/{study_id}?token={admin_token}",
        completion_code=completion_code,
        prolific_completion_code=config.prolific_completion_code,
    )


def write_invitations(created: CreatedStudy, path: Path) -> None:
    """The invitation links as CSV (participant_id, persona_id, url), written atomically."""
    frame = pl.DataFrame(
        [vars(invitation) for invitation in created.invitations],
        schema={"participant_id": pl.String, "persona_id": pl.String, "url": pl.String},
    )
    write_with_atomic(path, frame.write_csv)

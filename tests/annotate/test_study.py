"""Creating a study: seeded selection, slots, per-participant orders, stored secrets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from persona_testbed.annotate import Database, StudyConfig, create_study
from persona_testbed.annotate.models import Assignment, Item, Slot, StudyPersona
from persona_testbed.annotate.study import write_invitations
from persona_testbed.errors import InputError, PersonaError

from .conftest import StudyFixture, make_study, path_of


def _selection(database: Database) -> tuple[list[str], list[str]]:
    with database.read() as session:
        personas = list(
            session.scalars(select(StudyPersona.persona_id).order_by(StudyPersona.ordinal))
        )
        items = list(session.scalars(select(Item.item_id).order_by(Item.item_id)))
    return personas, items


def test_study_has_slots_items_and_orders(study: StudyFixture) -> None:
    created = study.created
    assert len(created.invitations) == 4
    # Round-robin: the first participants cover different personas.
    assert created.invitations[0].persona_id != created.invitations[1].persona_id
    assert Counter(i.persona_id for i in created.invitations) == {
        pid: 2 for pid in {i.persona_id for i in created.invitations}
    }
    assert "persona-005" not in {i.persona_id for i in created.invitations}  # too few questions
    with study.database.read() as session:
        for slot in session.scalars(select(Slot)):
            rows = session.execute(
                select(Assignment.position, Item.persona_pk, Assignment.displayed_order)
                .join(Item, Item.id == Assignment.item_pk)
                .where(Assignment.slot_pk == slot.id)
                .order_by(Assignment.position)
            ).all()
            assert [r.position for r in rows] == [0, 1, 2]
            assert {r.persona_pk for r in rows} == {slot.persona_pk}  # only its persona's items
            assert {r.displayed_order for r in rows} <= {"AB", "BA"}
        orders = session.scalars(select(Assignment.displayed_order)).all()
    assert set(orders) == {"AB", "BA"}  # both orders are used across participants


def test_same_seed_same_selection_other_seeds_differ(tmp_path: Path, run_dir: Path) -> None:
    def selection(seed: int, name: str) -> tuple[list[str], list[str]]:
        config = StudyConfig(run=run_dir, personas=2, questions=3, per_persona=1, majority=1)
        fixture = make_study(tmp_path, config.model_copy(update={"seed": seed}), name)
        try:
            return _selection(fixture.database)
        finally:
            fixture.database.close()

    assert selection(7, "a.sqlite") == selection(7, "b.sqlite")
    others = {str(selection(seed, f"s{seed}.sqlite")) for seed in range(6)}
    assert len(others) > 1


def test_tokens_are_unique_and_only_their_hash_is_stored(study: StudyFixture) -> None:
    tokens = [path_of(i.url).removeprefix("/i/") for i in study.created.invitations]
    assert len(set(tokens)) == len(tokens)
    database_bytes = Path(study.url).read_bytes() + Path(study.url + "-wal").read_bytes()
    admin_token = study.created.admin_url.split("token=")[1]
    for secret in [t.split(".")[1] for t in tokens] + [admin_token]:
        assert len(secret) >= 32
        assert secret.encode() not in database_bytes


def test_not_enough_personas_is_a_clear_error(tmp_path: Path, run_dir: Path) -> None:
    database = Database.open(str(tmp_path / "x.sqlite"))
    config = StudyConfig(run=run_dir, personas=6, questions=5, per_persona=1, majority=1)
    with pytest.raises(InputError, match=r"only 5 persona\(s\) have at least 5 distinct questions"):
        create_study(database, config)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Slot)) == 0
    database.close()


def test_duplicate_study_id_and_bad_majority(study: StudyFixture, run_dir: Path) -> None:
    config = StudyConfig(run=run_dir, personas=1, questions=2, per_persona=1, majority=1)
    with pytest.raises(PersonaError, match="study 's1' already exists"):
        create_study(study.database, config.model_copy(update={"study_id": "s1"}))
    with pytest.raises(InputError, match="--majority 3 is more than --per-persona 1"):
        create_study(study.database, config.model_copy(update={"majority": 3}))
    second = create_study(study.database, config)
    assert second.study_id == "study2"


def test_config_needs_exactly_one_source(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of --run DIR or --items FILE"):
        StudyConfig()
    with pytest.raises(ValueError, match="exactly one"):
        StudyConfig(run=run_dir, items=run_dir / "x.csv")


def test_invitations_csv(study: StudyFixture, tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    write_invitations(study.created, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "participant_id,persona_id,url"
    assert len(lines) == 5 and lines[1].startswith("s1-p001,persona-")

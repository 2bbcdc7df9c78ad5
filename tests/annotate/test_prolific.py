"""Prolific entry: next free slot, the same slot on return, completion redirect."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from persona_testbed.annotate import StudyConfig, create_app
from persona_testbed.annotate.models import Slot

from .conftest import StudyFixture, csrf_of, make_study, path_of, position_of

PROLIFIC = "/prolific/s1?PROLIFIC_PID={pid}&STUDY_ID=5f1e2d3c4b5a&SESSION_ID=sess{pid}"


def test_prolific_participants_take_free_slots_in_order(study: StudyFixture) -> None:
    app = create_app(study.database)
    with TestClient(app) as invited:
        invited.get(path_of(study.created.invitations[0].url))  # slot 1 is claimed by a link
    assigned = []
    for pid in ["pidA", "pidB", "pidC"]:
        with TestClient(app) as browser:
            assert "start the study" in browser.get(PROLIFIC.format(pid=pid)).text
    with study.database.read() as session:
        for pid in ["pidA", "pidB", "pidC"]:
            slot = session.scalar(select(Slot).where(Slot.prolific_pid == pid))
            assert slot is not None and slot.entry == "prolific"
            assert slot.prolific_study_id == "5f1e2d3c4b5a" and slot.prolific_session_id
            assigned.append(slot.participant_id)
    assert assigned == ["s1-p002", "s1-p003", "s1-p004"]
    with TestClient(app) as late:
        full = late.get(PROLIFIC.format(pid="pidD"))
    assert full.status_code == 410 and "The study is full" in full.text
    # The printed invitation link of a slot given to Prolific no longer admits anyone.
    with TestClient(app) as browser:
        taken = browser.get(path_of(study.created.invitations[1].url))
    assert taken.status_code == 410 and "no longer valid" in taken.text


def test_same_prolific_id_returns_to_the_same_place(study: StudyFixture) -> None:
    app = create_app(study.database)
    with TestClient(app) as first_visit:
        page = first_visit.get(PROLIFIC.format(pid="pidA")).text
        page = first_visit.post("/study/start", data={"csrf_token": csrf_of(page)}).text
        form = {"csrf_token": csrf_of(page), "position": "0", "choice": "2"}
        first_visit.post("/study/answer", data={**form, "justification": "x" * 12})
    with TestClient(app) as second_visit:
        page = second_visit.get(PROLIFIC.format(pid="pidA")).text
        assert position_of(page) == 1 and "Question 2 of 3" in page
    with study.database.read() as session:
        assert len(session.scalars(select(Slot).where(Slot.entry.is_not(None))).all()) == 1


def test_bad_prolific_parameters(client: TestClient) -> None:
    missing = client.get("/prolific/s1?STUDY_ID=x")
    assert missing.status_code == 400 and "Prolific details are missing" in missing.text
    assert client.get("/prolific/s1?PROLIFIC_PID=<script>").status_code == 400
    assert client.get("/prolific/unknown?PROLIFIC_PID=abc").status_code == 404


def test_prolific_completion_redirects_back_to_prolific(tmp_path: Path, run_dir: Path) -> None:
    config = StudyConfig(
        run=run_dir,
        personas=1,
        questions=1,
        per_persona=2,
        majority=1,
        study_id="s1",
        prolific_completion_code="C1A2B3",
    )
    fixture = make_study(tmp_path, config, "p.sqlite")
    with TestClient(create_app(fixture.database), follow_redirects=False) as browser:
        entry = browser.get(PROLIFIC.format(pid="pidZ"))
        assert entry.status_code == 303 and entry.headers["location"] == "/study"
        page = browser.get("/study").text
        browser.post("/study/start", data={"csrf_token": csrf_of(page)})
        page = browser.get("/study").text
        form = {"csrf_token": csrf_of(page), "position": "0", "choice": "1"}
        browser.post("/study/answer", data={**form, "justification": "y" * 25})
        done = browser.get("/study/complete")
    assert done.status_code == 303
    assert done.headers["location"] == "https://app.prolific.com/submissions/complete?cc=C1A2B3"
    # An invited (non-Prolific) participant of the same study sees the code instead.
    with TestClient(create_app(fixture.database)) as invited:
        page = invited.get(path_of(fixture.created.invitations[1].url)).text
        page = invited.post("/study/start", data={"csrf_token": csrf_of(page)}).text
        form = {"csrf_token": csrf_of(page), "position": "0", "choice": "1"}
        final = invited.post("/study/answer", data={**form, "justification": "y" * 25})
    assert "C1A2B3" in final.text
    fixture.database.close()

"""The participant routes through FastAPI's test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from persona_testbed.annotate import StudyConfig, create_app, labels
from persona_testbed.annotate.models import Answer, Assignment, Item, Slot, Study, utcnow

from .conftest import XSS, StudyFixture, csrf_of, make_study, path_of, position_of

JUSTIFICATION = "Because this persona values it."


def enter(client: TestClient, link: str) -> str:
    """Open an invitation link and read the instructions; returns the CSRF token."""
    page = client.get(path_of(link))
    assert page.status_code == 200 and "start the study" in page.text
    return csrf_of(page.text)


def start(client: TestClient, link: str) -> str:
    """Enter and accept the instructions; returns the first item page."""
    token = enter(client, link)
    page = client.post("/study/start", data={"csrf_token": token})
    assert page.status_code == 200
    return page.text


def answer(client: TestClient, page: str, choice: str = "1", text: str = JUSTIFICATION):
    form = {"csrf_token": csrf_of(page), "position": str(position_of(page)), "choice": choice}
    return client.post("/study/answer", data={**form, "justification": text})


def words(html: str) -> str:
    """The page with runs of whitespace collapsed (template line breaks do not matter)."""
    return " ".join(html.split())


def first_match(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"no {pattern!r} in the page"
    return match.group(1)


def answer_count(study: StudyFixture) -> int:
    with study.database.read() as session:
        return session.scalar(select(func.count()).select_from(Answer)) or 0


def test_participant_completes_the_study(client: TestClient, study: StudyFixture) -> None:
    link = study.created.invitations[0]
    page = start(client, link.url)
    shown_questions = []
    for number in range(1, 4):
        assert f"Question {number} of 3" in page
        assert f'<progress value="{number - 1}" max="3">' in page
        shown_questions.append(first_match(r'<p class="question">([^<]+)</p>', page))
        response = answer(client, page, choice="1" if number != 2 else "2")
        page = response.text
    assert response.status_code == 200
    assert "Your completion code is" in page and "DONE1234" in page
    # Only this persona's questions were shown.
    assert all(q.endswith(f"for persona {int(link.persona_id[-3:])}?") for q in shown_questions)
    frame = labels(study.database, study.database_study())
    assert frame.height == 3 and set(frame.get_column("annotator")) == {link.participant_id}
    # The stored label is canonical: "first shown" maps to A only when shown in AB order.
    with study.database.read() as session:
        rows = session.execute(
            select(Assignment.position, Assignment.displayed_order, Answer.label)
            .join(
                Answer,
                (Answer.slot_pk == Assignment.slot_pk) & (Answer.item_pk == Assignment.item_pk),
            )
            .join(Slot, Slot.id == Assignment.slot_pk)
            .where(Slot.participant_id == link.participant_id)
            .order_by(Assignment.position)
        ).all()
    for position, order, label in rows:
        first_shown = "A" if order == "AB" else "B"
        other = "B" if first_shown == "A" else "A"
        assert label == (other if position == 1 else first_shown)
    assert client.get("/study").text.count("DONE1234") == 1  # stays complete on reload


def test_answers_are_shown_in_the_participants_order(
    client: TestClient, study: StudyFixture
) -> None:
    page = start(client, study.created.invitations[0].url)
    with study.database.read() as session:
        order, answer_a = session.execute(
            select(Assignment.displayed_order, Item.answer_a)
            .join(Item, Item.id == Assignment.item_pk)
            .join(Slot, Slot.id == Assignment.slot_pk)
            .where(Slot.participant_id == "s1-p001", Assignment.position == 0)
        ).one()
    first = first_match(r'id="answer-1">([^<]+)<', page)
    assert (first == answer_a) == (order == "AB")
    assert client.get("/study").text == page  # a reload shows the same order


def test_reload_resumes_and_nothing_is_answered_twice(
    client: TestClient, study: StudyFixture
) -> None:
    page = start(client, study.created.invitations[1].url)
    answer(client, page)
    assert answer(client, page).status_code == 200  # the same form sent again
    assert answer_count(study) == 1
    again = client.get("/study").text
    assert "Question 2 of 3" in again and position_of(again) == 1
    # A later visit through the same link resumes too (new session, same place).
    with TestClient(create_app(study.database)) as other_browser:
        resumed = other_browser.get(path_of(study.created.invitations[1].url)).text
        assert "Question 2 of 3" in resumed


def test_invalid_answers_are_not_saved(client: TestClient, study: StudyFixture) -> None:
    page = start(client, study.created.invitations[0].url)
    no_choice = client.post(
        "/study/answer",
        data={"csrf_token": csrf_of(page), "position": "0", "justification": JUSTIFICATION},
    )
    assert no_choice.status_code == 422 and "Please choose one of the two answers" in no_choice.text
    short = answer(client, page, text="   too   ")
    assert short.status_code == 422 and "at least 10 characters" in words(short.text)
    long = answer(client, page, text="x" * 5001)
    assert long.status_code == 422 and "under 5000 characters" in words(long.text)
    future = client.post(
        "/study/answer",
        data={
            "csrf_token": csrf_of(page),
            "position": "2",
            "choice": "1",
            "justification": "x" * 20,
        },
    )
    assert future.status_code == 422 and "out of date" in future.text
    assert answer_count(study) == 0


def test_answering_before_the_instructions_saves_nothing(
    client: TestClient, study: StudyFixture
) -> None:
    token = enter(client, study.created.invitations[0].url)
    data = {"csrf_token": token, "position": "0", "choice": "1", "justification": JUSTIFICATION}
    response = client.post("/study/answer", data=data)
    assert "start the study" in response.text
    assert answer_count(study) == 0


@pytest.mark.parametrize("token", ["nonsense", "abc.def", "a" * 300])
def test_bad_links_get_a_plain_error_page(client: TestClient, token: str) -> None:
    response = client.get(f"/i/{token}")
    assert response.status_code == 404
    assert "This link is not valid" in response.text and "Traceback" not in response.text


def test_wrong_verifier_is_refused(client: TestClient, study: StudyFixture) -> None:
    selector = path_of(study.created.invitations[0].url).removeprefix("/i/").split(".")[0]
    assert client.get(f"/i/{selector}.{'x' * 32}").status_code == 404


def test_expired_study_refuses_new_participants(client: TestClient, study: StudyFixture) -> None:
    started = study.created.invitations[0].url
    start(client, started)
    with study.database.write() as session:
        session.execute(update(Study).values(expires_at=utcnow() - timedelta(minutes=1)))
    response = client.get(path_of(study.created.invitations[1].url))
    assert response.status_code == 410 and "This link has expired" in response.text
    assert "Question 1 of 3" in client.get(path_of(started)).text  # started ones may finish


def test_no_session_and_unknown_pages(client: TestClient) -> None:
    response = client.get("/study")
    assert response.status_code == 403 and "could not find your session" in response.text
    client.cookies.set("persona_participant", "e30.forged.sig")
    assert client.get("/study").status_code == 403
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert client.get("/docs").status_code == 404  # no API explorer in production


def test_csrf_is_required_on_every_post(client: TestClient, study: StudyFixture) -> None:
    enter(client, study.created.invitations[0].url)
    missing = client.post("/study/start", data={})
    assert missing.status_code == 403 and "This form has expired" in missing.text
    assert client.post("/study/start", data={"csrf_token": "0" * 64}).status_code == 403
    # A token from another participant's session does not work in this one.
    with TestClient(create_app(study.database)) as other:
        foreign = enter(other, study.created.invitations[1].url)
    assert client.post("/study/start", data={"csrf_token": foreign}).status_code == 403
    form = {"position": "0", "choice": "1", "justification": JUSTIFICATION}
    assert client.post("/study/answer", data=form).status_code == 403
    with study.database.read() as session:
        assert session.scalar(select(func.count()).where(Slot.started_at.is_not(None))) == 0


def test_request_bodies_have_a_size_limit(client: TestClient, study: StudyFixture) -> None:
    page = start(client, study.created.invitations[0].url)
    big = {
        "csrf_token": csrf_of(page),
        "position": "0",
        "choice": "1",
        "justification": "x" * 70_000,
    }
    response = client.post("/study/answer", data=big)
    assert response.status_code == 413 and "too long" in response.text

    def chunks() -> Iterator[
        bytes
    ]:  # no Content-Length: the limit applies while the body streams in
        for _ in range(100):
            yield b"justification=" + b"x" * 1000

    streamed = client.post(
        "/study/answer",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    assert answer_count(study) == 0


def test_persona_and_answer_html_is_escaped(tmp_path: Path) -> None:
    items = tmp_path / "items.csv"
    items.write_text(
        "persona_id,persona_text,question,answer_a,answer_b\n"
        f'p,"name: {XSS}\n{XSS}","Q {XSS}?","<b>bold</b> {XSS}","<img src=x onerror=alert(1)>"\n'
    )
    config = StudyConfig(items=items, personas=1, questions=1, per_persona=1, majority=1)
    fixture = make_study(tmp_path, config, "xss.sqlite")
    with TestClient(create_app(fixture.database)) as client:
        page = start(client, fixture.created.invitations[0].url)
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    fixture.database.close()


def test_security_headers(client: TestClient) -> None:
    response = client.get("/")
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert client.get("/static/style.css").status_code == 200


def test_unexpected_errors_show_a_plain_page(
    client: TestClient, study: StudyFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    enter(client, study.created.invitations[0].url)

    def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("persona_testbed.annotate.participation.load_view", broken)
    response = client.get("/study")
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text

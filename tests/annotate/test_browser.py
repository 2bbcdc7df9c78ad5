"""End to end in real Chromium (Debian's /usr/bin/chromium) driven by Playwright."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from persona_testbed.annotate import Database, StudyConfig, create_study, labels, resolve_study
from tests.chromium import CHROMIUM, needs_chromium

from .conftest import ARTIFACTS, XSS, StudyServer, write_items_jsonl

pytestmark = needs_chromium

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, expect


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StudyServer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("browser")
    url = str(tmp / "browser.sqlite")
    database = Database.open(url)
    items = write_items_jsonl(tmp / "items.jsonl", personas=1, questions=3)
    flow = create_study(
        database,
        StudyConfig(
            items=items, personas=1, questions=3, per_persona=2, majority=2, study_id="flow"
        ),
    )
    xss_items = tmp / "xss.jsonl"
    row = {
        "persona_id": "evil",
        "persona_text": f"age: 33\nquirk: {XSS}\n{XSS}",
        "question": f"Is this safe? {XSS}",
        "answer_a": f"<b>no</b> {XSS}",
        "answer_b": '<img src=x onerror="window.__xss=2">',
    }
    xss_items.write_text(json.dumps(row) + "\n")
    xss = create_study(
        database,
        StudyConfig(
            items=xss_items, personas=1, questions=1, per_persona=1, majority=1, study_id="xss"
        ),
    )
    database.close()
    running = StudyServer(url, tmp / "server.log").start()
    yield running, {"flow": flow, "xss": xss, "db": url}
    running.stop()


BrowserStudies = tuple[StudyServer, dict[str, Any]]


def page_problems(page: Page) -> list[str]:
    """Console errors (e.g. a CSP violation) and failed loads, collected while the page runs."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
    return problems


def answer(page: Page, choice: str, text: str) -> None:
    page.get_by_label(f"My persona prefers Answer {choice}").check()
    page.locator("#justification").fill(text)
    page.get_by_role("button", name="Save and continue").click()


def test_participant_completes_resumes_and_sees_the_code(
    browser: Browser, server: BrowserStudies
) -> None:
    running, studies = server
    invitation = studies["flow"].invitations[0]
    link = running.url(invitation.url)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = page_problems(page)
    page.goto(link)
    expect(
        page.get_by_role("heading", name="Welcome, and thank you for taking part")
    ).to_be_visible()
    expect(page.locator(".persona-card")).to_contain_text("chess number 0")
    page.get_by_role("button", name="I understand, start the study").click()

    expect(page.locator(".progress-text")).to_have_text("Question 1 of 3")
    answer(page, "1", "She plays chess, so she likes the careful answer.")
    expect(page.locator(".progress-text")).to_have_text("Question 2 of 3")
    assert page.locator("progress").get_attribute("value") == "1"
    first_answer = page.locator("#answer-1").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "annotate_item.png"), full_page=True)

    page.reload()  # resume after a reload: same question, same answer order
    expect(page.locator(".progress-text")).to_have_text("Question 2 of 3")
    assert page.locator("#answer-1").inner_text() == first_answer
    context.close()

    later = browser.new_context()  # come back later, in a fresh browser session
    page = later.new_page()
    errors += page_problems(page)
    page.goto(link)
    expect(page.locator(".progress-text")).to_have_text("Question 2 of 3")
    answer(page, "2", "A practical person would rather have the direct answer.")
    expect(page.locator(".progress-text")).to_have_text("Question 3 of 3")
    answer(page, "1", "This one matches the persona's love of strategy games.")
    expect(
        page.get_by_role("heading", name="Thank you, you have finished the study")
    ).to_be_visible()
    expect(page.locator("#completion-code")).to_have_text(studies["flow"].completion_code)
    later.close()
    assert errors == []

    database = Database.open(studies["db"])
    frame = labels(database, resolve_study(database, "flow"))
    database.close()
    assert frame.height == 3 and set(frame.get_column("annotator")) == {invitation.participant_id}
    assert all(len(text) >= 20 for text in frame.get_column("justification"))


def test_planted_script_shows_as_text(browser: Browser, server: BrowserStudies) -> None:
    running, studies = server
    context = browser.new_context()
    page = context.new_page()
    page.goto(running.url(studies["xss"].invitations[0].url))
    page.get_by_role("button", name="I understand, start the study").click()
    expect(page.locator(".progress-text")).to_have_text("Question 1 of 1")
    card = page.locator(".persona-card").inner_text()
    assert card.count(XSS) == 2
    assert XSS in page.locator(".question").inner_text()
    # Answer order is randomized per item, so check both answers whichever side they are on.
    answers = "\n".join(page.locator("#answer-1, #answer-2").all_inner_texts())
    assert f"<b>no</b> {XSS}" in answers
    assert '<img src=x onerror="window.__xss=2">' in answers
    assert page.locator("main script, main img, main b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    context.close()

"""The real server (uvicorn in a subprocess): simultaneous participants, restarts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from persona_testbed.annotate import Database, StudyConfig, create_study
from persona_testbed.annotate.models import Answer, Slot

from .conftest import StudyServer, csrf_of, position_of, write_items_jsonl

PARTICIPANTS = 100
T = TypeVar("T")


def all_at_once(count: int, action: Callable[[int], T]) -> list[T]:
    """Run action(i) for every i in threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait(timeout=60)
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.fixture
def crowd_db(tmp_path: Path) -> Iterator[str]:
    """25 personas x 4 participants = 100 invitation slots, plus a 100-place Prolific study."""
    items = write_items_jsonl(tmp_path / "items.jsonl", personas=25, questions=2)
    url = str(tmp_path / "crowd.sqlite")
    database = Database.open(url)
    config = StudyConfig(items=items, personas=25, questions=2, per_persona=4, min_justification=5)
    links = create_study(database, config.model_copy(update={"study_id": "links"}))
    create_study(database, config.model_copy(update={"study_id": "prolific"}))
    database.close()
    (tmp_path / "links.txt").write_text("\n".join(i.url for i in links.invitations))
    yield url


def counts(url: str) -> tuple[int, int, list[int]]:
    database = Database.open(url)
    with database.read() as session:
        answers = session.scalar(select(func.count()).select_from(Answer)) or 0
        distinct = session.scalar(
            select(func.count()).select_from(
                select(Answer.slot_pk, Answer.item_pk).distinct().subquery()
            )
        )
        positions = list(session.scalars(select(Slot.position).order_by(Slot.id)))
    database.close()
    return answers, distinct or 0, positions


def test_simultaneous_participants_and_restart(tmp_path: Path, crowd_db: str) -> None:
    links = (tmp_path / "links.txt").read_text().splitlines()
    server = StudyServer(crowd_db, tmp_path / "server.log").start()
    clients = [httpx.Client(base_url=server.base_url, timeout=60) for _ in links]
    try:

        def enter(index: int) -> str:
            client = clients[index]
            page = client.get(server.url(links[index]), follow_redirects=True).text
            start = client.post("/study/start", data={"csrf_token": csrf_of(page)})
            return client.get(start.headers["location"]).text

        with ThreadPoolExecutor(max_workers=16) as pool:
            pages = list(pool.map(enter, range(PARTICIPANTS)))

        def submit(index: int) -> int:
            page = pages[index]
            form = {"csrf_token": csrf_of(page), "position": str(position_of(page))}
            form |= {"choice": "1" if index % 2 else "2", "justification": f"reason {index}"}
            return clients[index].post("/study/answer", data=form).status_code

        assert all_at_once(PARTICIPANTS, submit) == [303] * PARTICIPANTS
        assert counts(crowd_db)[:2] == (PARTICIPANTS, PARTICIPANTS)
        # Everyone sends the same answer again, at once: nothing new is stored.
        assert all_at_once(PARTICIPANTS, submit) == [303] * PARTICIPANTS
        answers, distinct, positions = counts(crowd_db)
        assert (answers, distinct) == (PARTICIPANTS, PARTICIPANTS)
        assert positions[:PARTICIPANTS] == [1] * PARTICIPANTS

        # 100 Prolific participants arrive at the same moment: 100 different slots.
        prolific = [httpx.Client(base_url=server.base_url, timeout=60) for _ in links]
        entries = all_at_once(
            PARTICIPANTS,
            lambda i: prolific[i].get(f"/prolific/prolific?PROLIFIC_PID=pid{i:03d}").status_code,
        )
        assert entries == [303] * PARTICIPANTS
        again = prolific[0].get("/prolific/prolific?PROLIFIC_PID=pid999")
        assert again.status_code == 410  # full
        for client in prolific:
            client.close()
        database = Database.open(crowd_db)
        with database.read() as session:
            pids = session.scalars(select(Slot.prolific_pid).where(Slot.entry == "prolific"))
            assert sorted(str(pid) for pid in pids) == [f"pid{i:03d}" for i in range(PARTICIPANTS)]
        database.close()

        server.stop()
        assert counts(crowd_db)[0] == PARTICIPANTS
        server.start()  # same port, same database
        # Each participant's session and position survived the restart.
        resumed = clients[7].get("/study").text
        assert "Question 2 of 2" in resumed and position_of(resumed) == 1
        page = clients[7].get(server.url(links[7]), follow_redirects=True).text
        assert position_of(page) == 1
        form = {"csrf_token": csrf_of(page), "position": "1", "choice": "1"}
        done = clients[7].post(
            "/study/answer", data={**form, "justification": "after restart"}, follow_redirects=True
        )
        assert "Your completion code is" in done.text
        assert counts(crowd_db)[0] == PARTICIPANTS + 1
    finally:
        for client in clients:
            client.close()
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "locked" not in log

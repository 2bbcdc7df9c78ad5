"""The same study on PostgreSQL: a throwaway cluster started by the test (skips without one)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from persona_testbed.annotate import (
    Database,
    StudyConfig,
    create_app,
    create_study,
    labels,
    resolve_study,
)
from persona_testbed.annotate.models import Answer, Slot
from persona_testbed.annotate.participation import enter_with_prolific, start, submit_answer

from .conftest import csrf_of, free_port, path_of, write_items_jsonl


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as root, run it as the `postgres` system user.
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("the psycopg driver is not installed")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user")
    home = Path(tempfile.mkdtemp(prefix="persona-pg-"))
    home.chmod(0o777)
    data = home / "data"
    port = free_port()

    def run(*args: str) -> None:
        command = _as_postgres_user([str(binaries / args[0]), *args[1:]])
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    try:
        run("initdb", "-D", str(data), "-U", "persona", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off"
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[:200]}")
    try:
        yield f"postgresql://persona@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_study_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    items = write_items_jsonl(tmp_path / "items.jsonl", personas=10, questions=2)
    database = Database.open(postgres_url)
    assert database.engine.dialect.name == "postgresql"
    config = StudyConfig(items=items, personas=10, questions=2, per_persona=3, study_id="pg")
    created = create_study(database, config)

    # Thirty Prolific participants at once: thirty different slots, no slot twice.
    def arrive(index: int) -> int:
        return enter_with_prolific(database, "pg", f"pid{index}", None, None)

    with ThreadPoolExecutor(max_workers=30) as pool:
        slots = list(pool.map(arrive, range(30)))
        again = list(pool.map(arrive, range(30)))  # returning participants keep their slot
    assert len(set(slots)) == 30 and again == slots

    # The same answer submitted ten times at once is stored once.
    start(database, slots[0])
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda _: submit_answer(database, slots[0], 0, "1", "x" * 30), range(10)))
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 1
        assert session.scalar(select(Slot.position).where(Slot.id == slots[0])) == 1

    # The web app runs on it unchanged (a study with invitation links).
    second = create_study(
        database,
        config.model_copy(
            update={"study_id": "pg2", "personas": 1, "per_persona": 1, "majority": 1}
        ),
    )
    with TestClient(create_app(database)) as client:
        page = client.get(path_of(second.invitations[0].url)).text
        page = client.post("/study/start", data={"csrf_token": csrf_of(page)}).text
        for position in range(2):
            form = {"csrf_token": csrf_of(page), "position": str(position), "choice": "2"}
            page = client.post("/study/answer", data={**form, "justification": "y" * 30}).text
    assert "Your completion code is" in page
    assert labels(database, resolve_study(database, "pg2")).height == 2
    assert len(created.invitations) == 30
    database.close()

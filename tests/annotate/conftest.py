"""Fixtures for the annotate tests: small fake runs and items files, studies, a real server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest
from fastapi.testclient import TestClient

from persona_testbed.annotate import (
    CreatedStudy,
    Database,
    StudyConfig,
    create_app,
    create_study,
    resolve_study,
)
from persona_testbed.annotate.models import Study
from persona_testbed.contracts import OUTPUT_COLUMNS

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
XSS = "<script>window.__xss=1</script>"


def fake_persona_row(index: int) -> dict[str, object]:
    row: dict[str, object] = {name: None for name in OUTPUT_COLUMNS}
    row.update(
        {
            "persona_id": f"persona-{index:03d}",
            "split": "train" if index % 2 == 0 else "test",
            "age": 20 + index,
            "sex": "Female" if index % 2 else "Male",
            "occupation category": f"Occupation {index}",
            "religion": "None" if index % 3 else "Catholic",
            "political views": "Independent",
            "defining quirks": f"Collects stamps from country {index}",
            "source_state": "50",
            "source_serialno": f"S{index}",
            "source_sporder": 1,
            "weight": 1.0,
        }
    )
    return row


def write_personas(path: Path, count: int) -> Path:
    schema: dict[str, type[pl.DataType]] = {name: pl.String for name in OUTPUT_COLUMNS}
    schema.update({"age": pl.Int64, "source_sporder": pl.Int64, "weight": pl.Float64})
    frame = pl.DataFrame([fake_persona_row(i) for i in range(count)], schema=schema)
    frame.write_parquet(path)
    return path


def write_preferences(path: Path, questions_per_persona: list[int]) -> Path:
    rows = []
    for persona, count in enumerate(questions_per_persona):
        for question in range(count):
            rows.append(
                {
                    "pair_id": f"pair-{persona:03d}-{question:02d}",
                    "persona_id": f"persona-{persona:03d}",
                    "persona_text": f"fallback text for persona {persona}",
                    "prompt_id": f"prompt-{question:02d}",
                    "prompt": f"Question {question} for persona {persona}?",
                    "topic": "misc",
                    "split": "train" if question % 2 == 0 else "test_seen",
                    "chosen": f"Personalised answer {question} for persona {persona}.",
                    "rejected": f"Base answer {question}.",
                    "critique": "c",
                    "base_model": "m",
                    "critique_model": "m",
                    "revision_model": "m",
                    "judge_model": "m",
                    "judge_p_chosen": 0.7,
                    "judge_prefers_chosen": True,
                }
            )
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run with 6 personas; persona 5 has too few questions to be studied."""
    run = tmp_path / "run"
    run.mkdir()
    write_personas(run / "personas.parquet", 6)
    write_preferences(run / "preferences.parquet", [5, 6, 5, 7, 5, 2])
    return run


def write_items_jsonl(path: Path, personas: int, questions: int, persona_text: str = "") -> Path:
    lines = []
    for persona in range(personas):
        text = persona_text or f"age: {30 + persona}\nhobby: chess number {persona}"
        for question in range(questions):
            lines.append(
                {
                    "persona_id": f"p{persona}",
                    "persona_text": text,
                    "question": f"Q{question} of p{persona}: what should I do?",
                    "answer_a": f"Answer A{question} for p{persona}",
                    "answer_b": f"Answer B{question} for p{persona}",
                }
            )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@dataclass
class StudyFixture:
    database: Database
    created: CreatedStudy
    url: str

    def database_study(self) -> Study:
        return resolve_study(self.database, self.created.study_id)


def make_study(tmp_path: Path, config: StudyConfig, name: str = "study.sqlite") -> StudyFixture:
    url = str(tmp_path / name)
    database = Database.open(url)
    return StudyFixture(database, create_study(database, config), url)


@pytest.fixture
def study(tmp_path: Path, run_dir: Path) -> Iterator[StudyFixture]:
    """2 personas x 3 questions x 2 participants per persona, from the fake run."""
    config = StudyConfig(
        run=run_dir,
        personas=2,
        questions=3,
        per_persona=2,
        majority=2,
        min_justification=10,
        study_id="s1",
        completion_code="DONE1234",
    )
    fixture = make_study(tmp_path, config)
    yield fixture
    fixture.database.close()


@pytest.fixture
def client(study: StudyFixture) -> Iterator[TestClient]:
    with TestClient(create_app(study.database), raise_server_exceptions=False) as test_client:
        yield test_client


def path_of(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def position_of(html: str) -> int:
    match = re.search(r'name="position" value="(\d+)"', html)
    assert match, "page has no item form"
    return int(match.group(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StudyServer:
    """`persona annotate serve` in a subprocess (the real uvicorn server)."""

    def __init__(self, db_url: str, log_path: Path, port: int | None = None) -> None:
        self.db_url = db_url
        self.log_path = log_path
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> StudyServer:
        command = [sys.executable, "-m", "persona_testbed.annotate", "serve"]
        command += ["--db", self.db_url, "--port", str(self.port)]
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def url(self, link: str) -> str:
        """A printed link (made for another host/port) pointed at this server."""
        return self.base_url + path_of(link)

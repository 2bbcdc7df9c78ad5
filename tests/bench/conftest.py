"""Fixtures for the bench tests: small personas/prompts files and scripted models."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient, ScriptedBackend
from persona_testbed.run import RunDir

SEXES = ("Female", "Male")
PARTIES = ("Democrat", "Republican", "Independent")
RELIGIONS = ("Catholic", "Protestant", "Nothing in particular", "Jewish")
MARK = "[[MARK]]"


def fake_persona(index: int, split: str) -> dict[str, Any]:
    """A persona with every attribute set (deterministic from its index)."""
    row: dict[str, Any] = {name: f"{name} value {index % 3}" for name in ATTRIBUTES}
    row.update(
        {
            "persona_id": f"p{index:03d}",
            "split": split,
            "age": 20 + (index * 7) % 60,
            "sex": SEXES[index % 2],
            "race": "White" if index % 3 else "Asian",
            "political views": PARTIES[index % 3],
            "religion": RELIGIONS[index % 4],
            "ideology": "Moderate",
            "education": "Bachelor's degree",
            "fertility": None,
            "source_state": "50",
            "source_serialno": f"2018HU{index:07d}",
            "source_sporder": 1,
            "weight": 1.0,
        }
    )
    return row


def write_personas(path: Path, n_test: int, n_train: int = 2) -> Path:
    rows = [fake_persona(i, "test") for i in range(n_test)]
    rows += [fake_persona(n_test + i, "train") for i in range(n_train)]
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(path)
    return path


def write_prompts(path: Path, n_heldout: int, n_train: int = 2) -> Path:
    rows = []
    for i in range(n_heldout + n_train):
        rows.append(
            {
                "prompt_id": f"q{i:03d}",
                "text": f"Question number {i}: what should I do about topic {i}?",
                "source": "demo",
                "source_id": None,
                "topic": f"topic {i % 4}",
                "split": "heldout" if i < n_heldout else "train",
                "kept": True,
                "drop_reason": None,
            }
        )
    rows.append({**rows[0], "prompt_id": "dropped", "kept": False, "split": None})
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., RunDir]:
    def make(n_personas: int = 6, n_prompts: int = 4, name: str = "run") -> RunDir:
        run = RunDir.create(tmp_path / name)
        write_personas(run.file("personas.parquet"), n_personas)
        write_prompts(run.file("prompts.parquet"), n_prompts)
        return run

    return make


def scripted_client(script: Callable[[ChatRequest], Any], model_id: str, cache: Path) -> LLMClient:
    return LLMClient(
        ScriptedBackend(script, model_id=model_id),
        ClientSettings(cache_path=cache, show_progress=False, concurrency=4),
    )


def shown_attribute(request: ChatRequest, attribute: str) -> str | None:
    """The value of `attribute` in the persona a request shows (None if absent)."""
    text = "\n".join(m.content for m in request.messages)
    match = re.search(rf"^{re.escape(attribute)}: (.*)$", text, re.M)
    return match.group(1).strip() if match else None


def draw(*key: object) -> float:
    """A deterministic uniform draw in [0, 1) from a key."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def verdict(needs_revision: bool) -> str:
    return json.dumps({"reasoning": "checked", "needs_revision": needs_revision})


def answer_of(request: ChatRequest) -> str:
    """The ANSWER part of a judge prompt."""
    content = request.messages[-1].content
    return content.split("ANSWER:", 1)[1] if "ANSWER:" in content else ""


def marker_judge(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
    """Critic passes exactly the answers carrying MARK; subtlety flags answers saying 'as a'."""
    if request.top_logprobs:
        if "SUMMARY:" in request.messages[-1].content:
            return ("Yes", {"Yes": 0.8, "No": 0.2})
        flagged = "as a " in answer_of(request)
        return ("Yes", {"Yes": 0.9, "No": 0.1}) if flagged else ("No", {"Yes": 0.1, "No": 0.9})
    return verdict(needs_revision=MARK not in answer_of(request))


def clients_for(
    tmp_path: Path,
    model: Callable[[ChatRequest], Any],
    judge: Callable[[ChatRequest], Any] = marker_judge,
) -> dict[str, LLMClient]:
    """Scripted clients for `BenchConfig(models=("m",), judge="j")`, sharing one cache."""
    cache = tmp_path / "cache.sqlite"
    return {
        "m": scripted_client(model, "scripted:model", cache),
        "j": scripted_client(judge, "scripted:judge", cache),
    }

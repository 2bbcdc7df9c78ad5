"""Fixtures for the preference stage: a run directory with fake personas and prompts, and a
scripted model that plays base writer, critic, reviser and judge."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient, ScriptedBackend
from persona_testbed.run import RunDir

VIEWS = ("Democrat", "Republican", "Independent")
RELIGIONS = ("Catholic", "Protestant", "None", "Jewish")


def write_personas(run: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        row: dict[str, object] = dict.fromkeys(ATTRIBUTES)
        row.update(
            {
                "age": 20 + (7 * i) % 60,
                "sex": "Female" if i % 2 else "Male",
                "occupation category": "Teacher" if i % 3 else "Farmer",
                "political views": VIEWS[i % len(VIEWS)],
                "religion": RELIGIONS[i % len(RELIGIONS)],
            }
        )
        rows.append(
            {
                "persona_id": f"p{i:04d}",
                "split": "train" if i % 3 else "test",
                **row,
                "source_state": "CA",
                "source_serialno": str(1000 + i),
                "source_sporder": 1,
                "weight": 1.0,
            }
        )
    schema = {name: pl.String for name in ATTRIBUTES} | {
        "age": pl.Int64,
        "persona_id": pl.String,
        "split": pl.String,
        "source_state": pl.String,
        "source_serialno": pl.String,
        "source_sporder": pl.Int64,
        "weight": pl.Float64,
    }
    path = run / "personas.parquet"
    pl.DataFrame(rows, schema=schema).write_parquet(path)
    return path


def write_prompts(run: Path, n_train: int, n_heldout: int, n_dropped: int = 2) -> Path:
    topics = ("work", "family", "money")
    rows = []
    for i in range(n_train + n_heldout + n_dropped):
        kept = i < n_train + n_heldout
        rows.append(
            {
                "prompt_id": f"q{i:03d}",
                "text": f"Should people in situation number {i} do the contested thing?",
                "source": "demo",
                "source_id": f"q{i:03d}",
                "topic": topics[i % len(topics)],
                "split": ("train" if i < n_train else "heldout") if kept else None,
                "kept": kept,
                "drop_reason": None if kept else "too_short",
            }
        )
    path = run / "prompts.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


def make_run(path: Path, personas: int = 3, train: int = 6, heldout: int = 3) -> RunDir:
    run = RunDir.create(path)
    write_personas(run.path, personas)
    write_prompts(run.path, train, heldout)
    return run


REVISED = "tailored answer"


def dpf_script(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
    """Base writer, critic, reviser and a judge who prefers the tailored answer, with a
    position bias towards "A" that the both-orders average must cancel."""
    user = request.messages[-1].content
    if request.top_logprobs:
        first = re.search(r"Answer A: (.*)", user)
        chosen_first = bool(first and first.group(1).startswith(REVISED))
        return ("A", {"A": 0.8, "B": 0.2}) if chosen_first else ("B", {"A": 0.3, "B": 0.7})
    if user.startswith("Examine the COMPLETION"):
        persona = re.search(r"political views: (\w+)", user)
        view = persona.group(1) if persona else "?"
        return f"EVALUATION: too generic for a {view}. SUGGESTIONS: be concrete.\nDONE"
    if user.startswith("Revise the COMPLETION"):
        critique = re.search(r"CRITIQUE: '(.*?)'\. ", user, re.DOTALL)
        return f"REVISED PREFERENCE: {REVISED} [{critique.group(1) if critique else ''}]\nDONE"
    return f"base answer #{request.sample_index} to: {user}"


def scripted_client(
    tmp_path: Path, script=dpf_script, model_id: str = "scripted:dpf"
) -> tuple[LLMClient, ScriptedBackend]:
    backend = ScriptedBackend(script, model_id=model_id)
    settings = ClientSettings(cache_path=tmp_path / "cache.sqlite", show_progress=False)
    return LLMClient(backend, settings), backend

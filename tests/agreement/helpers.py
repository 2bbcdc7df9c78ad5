"""Small run directories and scripted models for the agreement tests."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient, ScriptedBackend
from persona_testbed.run import RunDir

PARTIES = ("Democrat", "Republican", "Independent")
RELIGIONS = ("Catholic", "Protestant", "Nothing in particular", "Jewish")
REFINED = "[refined]"
# Attributes that do not apply to most people: None for most fake personas.
RARE = (
    "disability",
    "cognitive difficulty",
    "vision difficulty",
    "hearing difficulty",
    "fertility",
)


def fake_persona(index: int) -> dict[str, Any]:
    """A persona with the 33 attribute columns; the rare ones apply to every fourth persona."""
    row: dict[str, Any] = {name: f"{name} value {index % 3}" for name in ATTRIBUTES}
    row.update(
        {
            "persona_id": f"p{index:03d}",
            "split": "train" if index % 2 else "test",
            "age": 20 + (index * 7) % 60,
            "sex": ("Female", "Male")[index % 2],
            "political views": PARTIES[index % 3],
            "religion": RELIGIONS[index % 4],
            "source_state": "50",
            "source_serialno": f"2018HU{index:07d}",
            "source_sporder": 1,
            "weight": 1.0,
        }
    )
    for name in RARE:
        if index % 4:
            row[name] = None
    return row


def personas_frame(count: int) -> pl.DataFrame:
    return pl.DataFrame([fake_persona(i) for i in range(count)], infer_schema_length=None)


QUESTIONS = (
    "Should the government raise the minimum wage?",
    "Is it ever right to eat meat?",
    "Should college be free for everyone?",
    "Are cities better places to live than the countryside?",
    "Should voting be compulsory?",
    "Is working from home better than the office?",
    "Should religion be taught in public schools?",
    "Is nuclear power a good answer to climate change?",
)


def prompts_frame(count: int) -> pl.DataFrame:
    rows = [
        {
            "prompt_id": f"pr{i:03d}",
            "text": QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" ({i})"),
            "source": "demo",
            "source_id": None,
            "topic": "politics",
            "split": ("train", "heldout")[i % 2],
            "kept": True,
            "drop_reason": None,
        }
        for i in range(count)
    ]
    rows.append({**rows[0], "prompt_id": "dropped", "text": "too short", "kept": False})
    return pl.DataFrame(rows, infer_schema_length=None)


def preferences_frame(personas: pl.DataFrame, per_persona: int) -> pl.DataFrame:
    rows = []
    for persona_id in personas["persona_id"]:
        for j in range(per_persona):
            question = QUESTIONS[j % len(QUESTIONS)]
            rows.append(
                {
                    "pair_id": f"{persona_id}-q{j}",
                    "persona_id": persona_id,
                    "persona_text": None,
                    "prompt_id": f"pr{j:03d}",
                    "prompt": question,
                    "topic": "politics",
                    "split": "train",
                    "chosen": f"{REFINED} a kind answer to {question}",
                    "rejected": f"A plain answer to {question}",
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None)


def make_run(
    root: Path, *, personas: int = 12, prompts: int = 8, pairs_per_persona: int = 4
) -> RunDir:
    """A run directory holding personas.parquet, prompts.parquet and preferences.parquet."""
    run = RunDir.create(root)
    people = personas_frame(personas)
    people.write_parquet(run.file("personas.parquet"))
    prompts_frame(prompts).write_parquet(run.file("prompts.parquet"))
    preferences_frame(people, pairs_per_persona).write_parquet(run.file("preferences.parquet"))
    return run


# ---- scripted models -------------------------------------------------------------------------

_QUESTION = re.compile(r"Someone asked: (.*)")


def persona_value(request: ChatRequest, attribute: str) -> str | None:
    """The value of `attribute` on the persona card in a role-play request (None: absent)."""
    text = "\n".join(m.content for m in request.messages if m.role == "system")
    match = re.search(rf"^{re.escape(attribute)}: (.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def question_of(request: ChatRequest) -> str:
    match = _QUESTION.search(request.messages[-1].content)
    return match.group(1).strip() if match else ""


def refined_shown_first(request: ChatRequest) -> bool:
    user = request.messages[-1].content
    return user.find(REFINED) < user.find("Answer B:")


def odd(text: str) -> bool:
    return zlib.crc32(text.encode()) % 2 == 1


def dpf_reply(request: ChatRequest) -> str:
    """Base answers, critiques and revisions of the DPF steps."""
    user = request.messages[-1].content
    if "Revise the COMPLETION" in user:
        return f"REVISED PREFERENCE: {REFINED} a shorter, kinder answer.\nDONE"
    if "Examine the COMPLETION" in user:
        return "EVALUATION: too long. SUGGESTIONS: be brief.\nDONE"
    return f"A plain answer to: {user[:60]}"


Preference = Callable[[ChatRequest], bool]


def roleplay_script(prefers_refined: Preference) -> Callable[[ChatRequest], Any]:
    """A model that writes DPF text and, asked to choose, puts 0.9 on the answer it prefers."""

    def script(request: ChatRequest) -> Any:
        if not request.top_logprobs:
            return dpf_reply(request)
        first_is_refined = refined_shown_first(request)
        wants_first = prefers_refined(request) == first_is_refined
        return ("A", {"A": 0.9, "B": 0.1} if wants_first else {"A": 0.1, "B": 0.9})

    return script


def political_views_only(request: ChatRequest) -> bool:
    """Planted signal: the choice depends on the persona's political views and nothing else.
    Without views it follows a per-question coin; with views it takes the other answer."""
    coin = odd(question_of(request))
    return coin if persona_value(request, "political views") is None else not coin


def scripted_client(
    script: Callable[[ChatRequest], Any], tmp_path: Path, model_id: str = "scripted:a"
) -> LLMClient:
    settings = ClientSettings(cache_path=tmp_path / f"{model_id}.sqlite", show_progress=False)
    return LLMClient(ScriptedBackend(script, model_id=model_id), settings)

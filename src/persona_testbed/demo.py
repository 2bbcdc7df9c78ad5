"""`persona demo`: a short end-to-end exercise of the pipeline with the chosen model.

It builds a small census-grounded population from the bundled sample (raked to US 2022
adults), compares it with the census, then has the model role-play one persona."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from persona_testbed.census.persona import Persona
from persona_testbed.llm import (
    ClientSettings,
    LLMClient,
    Message,
    ModelUsage,
    OrderedChoice,
    usage_since,
)
from persona_testbed.run import RunDir

DEMO_PERSONAS = 20
DEMO_QUESTION = "What is the best way to spend a free Sunday?"
DEMO_ANSWERS = (
    "Sleep in, then spend the afternoon tending the garden and dropping off vegetables at the "
    "local food bank before a family dinner.",
    "Stay out late at a nightclub downtown and spend the day recovering with video games.",
)


def _roleplay_messages(persona: str, question: str) -> list[Message]:
    return [
        Message(
            role="system",
            content=f"You are role-playing this person. Stay in character.\n{persona}",
        ),
        Message(role="user", content=question),
    ]


def _preference_prompt(persona: str, answers: Sequence[str]) -> list[Message]:
    return [
        Message(
            role="system",
            content=f"You are role-playing this person.\n{persona}",
        ),
        Message(
            role="user",
            content=(
                f"Question: {DEMO_QUESTION}\nAnswer A: {answers[0]}\nAnswer B: {answers[1]}\n"
                "Which answer would you prefer? Reply with A or B."
            ),
        ),
    ]


@dataclass(frozen=True)
class DemoResult:
    out: Path
    personas: int
    persona_text: str
    reply: str
    prefers_first: float
    usage: dict[str, ModelUsage]


def run_demo(
    out: Path,
    model: str,
    settings: ClientSettings,
    *,
    n_personas: int = DEMO_PERSONAS,
    force: bool = False,
) -> DemoResult:
    from persona_testbed.census import PersonaConfig, run_census_compare, run_personas

    client = LLMClient.from_spec(model, settings)  # a bad spec fails before anything is written
    try:
        built = run_personas(
            out,
            PersonaConfig(n=n_personas, rake="us-2022", model=model, seed=0),
            client=client,
            force=force,
        )
        run_census_compare(out, force=force)
        personas = pl.read_parquet(built.personas_path)
        persona = Persona.from_row(personas.row(0, named=True)).to_text()
        run = RunDir.open(out)
        config = {
            "model": model,
            "question": DEMO_QUESTION,
            "persona_id": personas["persona_id"][0],
        }
        before = client.usage
        with run.stage("roleplay", config, seed=0, force=force) as stage:
            reply = client.complete_batch(
                [client.request(_roleplay_messages(persona, DEMO_QUESTION), max_tokens=96)],
                description="role-play",
            )[0]
            item = OrderedChoice(
                render=lambda answers: _preference_prompt(persona, answers),
                options=DEMO_ANSWERS,
                labels=("A", "B"),
            )
            choice = client.choose_both_orders_batch([item])[0]
            stage.write_json(
                "roleplay/roleplay.json",
                {
                    "persona_id": config["persona_id"],
                    "persona": persona,
                    "question": DEMO_QUESTION,
                    "reply": reply.text,
                    "answers": list(DEMO_ANSWERS),
                    "p_prefers_first_answer": choice.probs[0],
                    "label_coverage": choice.coverage,
                    "model": client.model_id,
                },
            )
            stage.record.stats["p_prefers_first_answer"] = round(choice.probs[0], 4)
            stage.add_usage(usage_since(client.usage, before))
        total = RunDir.open(out).load_manifest().total_usage()
        return DemoResult(out, personas.height, persona, reply.text, choice.probs[0], total)
    finally:
        client.close()

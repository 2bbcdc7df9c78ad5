"""`persona demo`: a short end-to-end exercise of the pipeline with the chosen model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from persona_testbed.llm import ClientSettings, LLMClient, Message, ModelUsage, OrderedChoice
from persona_testbed.run import RunDir

# A hand-written persona for the role-play check; the census stage replaces it with sampled ones.
DEMO_PERSONA = (
    "Age: 47. Sex: Female. Race: White alone. Occupation: registered nurse. "
    "Marital status: married. Religion: Catholic. Political views: Moderate. "
    "Personal time: gardening and volunteering at the food bank. Core values: family, service."
)
DEMO_QUESTION = "What is the best way to spend a free Sunday?"
DEMO_ANSWERS = (
    "Sleep in, then spend the afternoon tending the garden and dropping off vegetables at the "
    "local food bank before a family dinner.",
    "Stay out late at a nightclub downtown and spend the day recovering with video games.",
)


def _roleplay_messages(question: str) -> list[Message]:
    return [
        Message(
            role="system",
            content=f"You are role-playing this person. Stay in character.\n{DEMO_PERSONA}",
        ),
        Message(role="user", content=question),
    ]


def _preference_prompt(answers: Sequence[str]) -> list[Message]:
    return [
        Message(
            role="system",
            content=f"You are role-playing this person.\n{DEMO_PERSONA}",
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
    reply: str
    prefers_first: float
    usage: dict[str, ModelUsage]


def run_demo(out: Path, model: str, settings: ClientSettings, *, force: bool = False) -> DemoResult:
    client = LLMClient.from_spec(model, settings)  # a bad spec fails before anything is written
    run = RunDir.create(out)
    config = {"model": model, "question": DEMO_QUESTION}
    try:
        with run.stage("demo", config, seed=0, force=force) as stage:
            reply = client.complete_batch(
                [client.request(_roleplay_messages(DEMO_QUESTION), max_tokens=96, seed=0)],
                description="role-play",
            )[0]
            choice = client.choose_both_orders_batch(
                [OrderedChoice(render=_preference_prompt, options=DEMO_ANSWERS, labels=("A", "B"))]
            )[0]
            stage.write_json(
                "demo/roleplay.json",
                {
                    "persona": DEMO_PERSONA,
                    "question": DEMO_QUESTION,
                    "reply": reply.text,
                    "answers": list(DEMO_ANSWERS),
                    "p_prefers_first_answer": choice.probs[0],
                    "label_coverage": choice.coverage,
                    "model": client.model_id,
                },
            )
            stage.record.stats["p_prefers_first_answer"] = round(choice.probs[0], 4)
            stage.add_usage(client.usage)
        return DemoResult(out, reply.text, choice.probs[0], client.usage)
    finally:
        client.close()

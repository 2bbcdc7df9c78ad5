"""Planted role-play judge (issue 13, section 6): the DPF steps write a base answer y_l and a
revision y_w marked `REFINED`; the persona-judge prefers y_w with a planted per-persona
probability: `PREFER_RATE[sex]` by the card's `sex` line. Each pair's coin decides once, and the
judge answers both orders consistently through first-token log-probabilities on A/B (0.85 on
the preferred letter), so the stage's both-orders average recovers the coin.
"""

from __future__ import annotations

import re

from tests.planted.http import PlantedServer, Reply, Request, coin

REFINED = "[refined]"
PREFER_RATE = {"Female": 0.9, "Male": 0.6}
PREFERRED = 0.85


def _question(user: str) -> str:
    match = re.search(r"Someone asked: (.*)", user)
    return match.group(1).strip() if match else user


def _sex(system: str) -> str | None:
    match = re.search(r"^sex: (.*)$", system, re.MULTILINE)
    return match.group(1).strip() if match else None


def prefers_refined(system: str, question: str) -> bool:
    """The planted coin of one (persona card, question) pair."""
    rate = PREFER_RATE.get(_sex(system) or "", 0.5)
    return coin(system, question) < rate


def judge_behaviour(request: Request) -> Reply:
    user = request.user
    if request.wants_logprobs:
        refined_first = user.find(REFINED) < user.find("Answer B:")
        wants_a = prefers_refined(request.system, _question(user)) == refined_first
        low = 1.0 - PREFERRED
        return Reply(
            "A" if wants_a else "B",
            {"A": PREFERRED, "B": low} if wants_a else {"A": low, "B": PREFERRED},
        )
    if user.startswith("Revise the COMPLETION"):
        return Reply(f"REVISED PREFERENCE: {REFINED} a shorter, kinder answer.\nDONE")
    if user.startswith("Examine the COMPLETION"):
        return Reply("EVALUATION: too long. SUGGESTIONS: be brief.\nDONE")
    return Reply("A plain, complete base answer.")


def planted_judge_server() -> PlantedServer:
    return PlantedServer(judge_behaviour)

"""Planted bench behaviour (issue 13, section 6): a model under test that personalizes only for
personas whose card says `sex: Female`, with probability `PERSONALIZE_RATE` per sample, and a
critic that passes exactly the personalized answers. The subtlety judge always says "subtle".

So the planted accuracy of the `persona` method is PERSONALIZE_RATE on female personas and 0 on
the others; `no-persona` never sees a persona and never personalizes (accuracy 0).
"""

from __future__ import annotations

import json
import re

from tests.planted.http import PlantedServer, Reply, Request, coin

PLANTED_ATTRIBUTE, PLANTED_VALUE = "sex", "Female"
PERSONALIZE_RATE = 0.7
PERSONALIZED = "[personalized]"


def _card_value(system: str, attribute: str) -> str | None:
    match = re.search(rf"^{re.escape(attribute)}: (.*)$", system, re.MULTILINE)
    return match.group(1).strip() if match else None


def bench_behaviour(request: Request) -> Reply:
    if request.system.startswith("You are a strict critic"):
        answer = request.user.split("ANSWER:", 1)[-1]
        verdict = {"reasoning": "planted", "needs_revision": PERSONALIZED not in answer}
        return Reply(json.dumps(verdict))
    if request.system.startswith("You check answers for subtlety"):
        return Reply("No", {"No": 0.9, "Yes": 0.1})
    # The model under test: its persona card (if any) is in the system message.
    targeted = _card_value(request.system, PLANTED_ATTRIBUTE) == PLANTED_VALUE
    if targeted and coin(request.system, request.user, request.seed) < PERSONALIZE_RATE:
        return Reply(f"{PERSONALIZED} An answer fitted to this user, in two sentences.")
    return Reply("A generic answer that fits anyone, in two sentences.")


def planted_bench_server() -> PlantedServer:
    return PlantedServer(bench_behaviour)

"""A scripted OpenAI-compatible chat server whose "model" has a planted LOO behaviour.

The role-play annotator's choice depends on one attribute only: whether the persona card shows
`PLANTED_ATTRIBUTE`. Without it, the persona prefers the refined answer on questions whose
CRC32 is odd and the baseline on the others; with it, the opposite. Every other attribute is
ignored, so in a leave-one-out study only pairs for `PLANTED_ATTRIBUTE` change any choice
(observed agreement 0, PABAK -1) and every other attribute changes none (PABAK 1).

On questions containing `SILENT_MARKER` the annotator puts no probability on A or B when the
refined answer is listed second, so those items are undecided and must be counted, not labelled.

The choice is read position-aware from the prompt (where the refined answer is listed) and
answered with first-token log-probabilities, 0.85 on the preferred letter. The DPF steps
(base answer, critique, revision) get fixed texts in the formats the pipeline parses.

The loopback server's rules (`persona_testbed.testing.loopback`) match the last user message only,
and the persona card is in the system message, so they cannot express this behaviour.
"""

from __future__ import annotations

import re
import zlib

from tests.planted.http import PlantedServer, Reply, Request

PLANTED_ATTRIBUTE = "religion"
REFINED = "[refined]"
SILENT_MARKER = "(silent)"
PREFERRED = 0.85


def _question(user: str) -> str:
    match = re.search(r"Someone asked: (.*)", user)
    return match.group(1).strip() if match else user


def _card_shows(system: str, attribute: str) -> bool:
    return re.search(rf"^{re.escape(attribute)}: ", system, re.MULTILINE) is not None


def planted_choice(system: str, user: str) -> dict[str, float] | None:
    """The annotator's first-token distribution over A/B, or None (no mass on A or B)."""
    refined_first = user.find(REFINED) < user.find("Answer B:")
    if SILENT_MARKER in user and not refined_first:
        return None
    coin = zlib.crc32(_question(user).encode()) % 2 == 1
    prefers_refined = coin != _card_shows(system, PLANTED_ATTRIBUTE)
    wants_a = prefers_refined == refined_first
    other = 1.0 - PREFERRED
    return {"A": PREFERRED, "B": other} if wants_a else {"A": other, "B": PREFERRED}


def dpf_text(user: str) -> str:
    if "Revise the COMPLETION" in user:
        return f"REVISED PREFERENCE: {REFINED} a shorter, kinder answer.\nDONE"
    if "Examine the COMPLETION" in user:
        return "EVALUATION: too long. SUGGESTIONS: be brief.\nDONE"
    return "A plain answer."


def loo_behaviour(request: Request) -> Reply:
    """The planted annotator for choice requests (logprobs), fixed DPF texts otherwise."""
    if not request.wants_logprobs:
        return Reply(dpf_text(request.user))
    dist = planted_choice(request.system, request.user)
    # No mass on A or B: the only alternative is another token.
    return (
        Reply("Hmm", {"Hmm": 1.0}) if dist is None else Reply(max(dist, key=dist.__getitem__), dist)
    )


class PlantedLooServer(PlantedServer):
    """The planted LOO server on 127.0.0.1 (a free port); a context manager."""

    def __init__(self) -> None:
        super().__init__(loo_behaviour)

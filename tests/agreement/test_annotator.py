"""Role-play labels: ties and items an order left without label mass get no label."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_testbed.agreement.annotator import TIE, UNDECIDED, judge
from persona_testbed.agreement.dpf import load_templates
from persona_testbed.llm import ChatRequest

from .helpers import REFINED, refined_shown_first, scripted_client

QUESTIONS = ("Which is better, tea or coffee?", "Should cities ban cars?", "Is art useful?")


def _script(request: ChatRequest) -> tuple[str, dict[str, float]]:
    """Prefers the refined answer on the first question; on the second it picks whatever is
    listed first (a tie once both orders are averaged); on the third it only answers when the
    refined answer is listed first, with 0.9 on it, and puts no mass on A/B otherwise."""
    user = request.messages[-1].content
    first = refined_shown_first(request)
    if QUESTIONS[0] in user:
        return ("A", {"A": 0.8, "B": 0.2} if first else {"A": 0.2, "B": 0.8})
    if QUESTIONS[1] in user:
        return ("A", {"A": 0.7, "B": 0.3})
    return ("A", {"A": 0.9, "B": 0.1}) if first else ("Well", {"Well": 1.0})


def test_ties_and_undecided_items_get_no_label(tmp_path: Path) -> None:
    client = scripted_client(_script, tmp_path)
    judgements = judge(
        client,
        ["age: 40"] * 3,
        list(QUESTIONS),
        [f"{REFINED} yes"] * 3,
        ["plain"] * 3,
        load_templates("paper"),
    )
    decided, tie, undecided = judgements
    assert decided.label == "A" and decided.no_label is None
    assert decided.p_a == pytest.approx(0.8)
    # Before the fix an exact tie was labelled "A".
    assert tie.label is None and tie.no_label == TIE
    assert tie.p_a == pytest.approx(0.5)
    # Before the fix the empty order was averaged in as 0.5: p_a 0.70, label "A".
    assert undecided.label is None and undecided.no_label == UNDECIDED
    assert undecided.p_a == 0.5
    assert undecided.coverage == pytest.approx(0.5)

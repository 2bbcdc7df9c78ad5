"""The verification judge: a pair that one option order leaves without label mass has no
verdict (undecided), never a verdict decided by the other order alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from persona_testbed.llm import ChatRequest
from persona_testbed.preferences import judge_pairs
from persona_testbed.preferences.templates import load_templates
from tests.preferences.helpers import REVISED, scripted_client


def _judge(request: ChatRequest) -> tuple[str, dict[str, float]]:
    """0.9 on y_w when it is listed first; when listed second, no mass on A or B on the
    second question (and a 0.9 preference for y_w on the first)."""
    user = request.messages[-1].content
    first = re.search(r"Answer A: (.*)", user)
    chosen_first = bool(first and first.group(1).startswith(REVISED))
    if chosen_first:
        return ("A", {"A": 0.9, "B": 0.1})
    if "second" in user:
        return ("I", {"I": 1.0})
    return ("B", {"A": 0.1, "B": 0.9})


def test_one_order_without_label_mass_is_undecided_not_prefers_chosen(tmp_path: Path) -> None:
    client, _ = scripted_client(tmp_path, _judge)
    decided, undecided = judge_pairs(
        client,
        ["political views: Democrat"] * 2,
        ["the first question?", "the second question?"],
        [f"{REVISED} one", f"{REVISED} two"],
        ["plain one", "plain two"],
        load_templates("paper"),
    )
    assert decided.prefers_chosen is True and not decided.undecided
    assert decided.p_chosen == pytest.approx(0.9)
    # Before the fix: P(y_w) = (0.9 + 0.5) / 2 = 0.70, "prefers y_w".
    assert undecided.undecided
    assert undecided.prefers_chosen is None
    assert undecided.p_chosen == 0.5

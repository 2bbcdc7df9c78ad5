"""Critic verdict parsing: valid, fenced and malformed verdicts; the subtlety judge."""

from __future__ import annotations

import json
from pathlib import Path

from persona_testbed.bench.critics import (
    JudgeItem,
    critic_verdicts,
    parse_verdict,
    subtlety_flags,
)
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient
from persona_testbed.testing import ScriptedBackend

from .conftest import scripted_client, verdict

ITEM = JudgeItem("age: 40\nsex: Female", "Should I buy a car?", "Buy a used one.")


def test_valid_verdicts_parse_with_surrounding_prose() -> None:
    parsed = parse_verdict('Sure.\n```json\n{"reasoning": "fine", "needs_revision": false}\n```')
    assert parsed.needs_revision is False
    assert parsed.passed is True
    assert parsed.reasoning == "fine"
    assert parsed.error is None


def test_malformed_verdict_is_an_error_not_a_pass() -> None:
    parsed = parse_verdict('{"reasoning": "fine", "needs_revision": "perhaps"}')
    assert parsed.passed is None
    assert parsed.needs_revision is None
    assert parsed.error is not None and "needs_revision" in parsed.error
    assert parsed.raw.startswith('{"reasoning"')
    assert "Invalid JSON" in (parse_verdict("looks good to me").error or "")


def test_critic_reasks_once_then_records_the_raw_reply(tmp_path: Path) -> None:
    # Replies by the answer judged, not by call order: the two items' calls may interleave.
    bad = iter(["no json here", "still none"])

    def judge_script(request: ChatRequest) -> str:
        text = "\n".join(m.content for m in request.messages)
        return next(bad) if "Buy a used one." in text else verdict(True)

    judge = scripted_client(judge_script, "scripted:judge", tmp_path / "c.db")
    templates = TemplateSet.load()
    first, second = critic_verdicts(
        judge,
        [ITEM, JudgeItem(ITEM.persona_text, ITEM.question, "Walk.")],
        templates,
        max_tokens=64,
    )
    assert first.error is not None and first.raw == "still none" and first.attempts == 2
    assert first.passed is None
    assert second.needs_revision is True and second.passed is False
    assert judge.usage["scripted:judge"].parse_failures == 1


def test_critic_prompt_carries_persona_question_answer_and_schema(tmp_path: Path) -> None:
    seen: list[ChatRequest] = []

    def judge_script(request: ChatRequest) -> str:
        seen.append(request)
        return verdict(False)

    judge = scripted_client(judge_script, "scripted:judge", tmp_path / "c.db")
    (result,) = critic_verdicts(judge, [ITEM], TemplateSet.load(), max_tokens=64)
    assert result.passed is True
    content = seen[0].messages[-1].content
    for part in ("sex: Female", "Should I buy a car?", "Buy a used one."):
        assert part in content
    assert seen[0].response_format is not None
    assert seen[0].temperature == 0.0


def test_subtlety_flag_from_first_token_probabilities(tmp_path: Path) -> None:
    def judge_script(request: ChatRequest) -> tuple[str, dict[str, float]]:
        if "woman" in request.messages[-1].content:
            return ("Yes", {"Yes": 0.8, "No": 0.2})
        if "nothing" in request.messages[-1].content:
            return ("Maybe", {"Maybe": 1.0})
        return ("No", {"Yes": 0.3, "No": 0.7})

    judge = scripted_client(judge_script, "scripted:judge", tmp_path / "c.db")
    items = [
        JudgeItem(ITEM.persona_text, ITEM.question, "As a woman of 40, buy a car."),
        JudgeItem(ITEM.persona_text, ITEM.question, "Buy a car."),
        JudgeItem(ITEM.persona_text, ITEM.question, "nothing"),
    ]
    flagged, subtle, unknown = subtlety_flags(judge, items, TemplateSet.load())
    assert flagged.not_subtle is True and flagged.p_not_subtle is not None
    assert abs(flagged.p_not_subtle - 0.8) < 1e-9
    assert subtle.not_subtle is False
    assert unknown.not_subtle is None and unknown.error is not None


def test_subtlety_flag_from_a_judge_without_logprobs_is_a_constrained_answer(
    tmp_path: Path,
) -> None:
    def judge_script(request: ChatRequest) -> str:
        said = "Yes" if "woman" in request.messages[-1].content else "No"
        return json.dumps({"answer": said}) if request.response_format else said

    judge = LLMClient(
        ScriptedBackend(judge_script, model_id="scripted:judge", logprobs=False),
        ClientSettings(cache_path=tmp_path / "c.db", show_progress=False),
    )
    items = [
        JudgeItem(ITEM.persona_text, ITEM.question, "As a woman of 40, buy a car."),
        JudgeItem(ITEM.persona_text, ITEM.question, "Buy a car."),
    ]
    flagged, subtle = subtlety_flags(judge, items, TemplateSet.load())
    assert (flagged.not_subtle, flagged.p_not_subtle, flagged.method) == (True, 1.0, "constrained")
    assert (subtle.not_subtle, subtle.p_not_subtle, subtle.method) == (False, 0.0, "constrained")


def test_raw_newlines_inside_the_reasoning_are_tolerated() -> None:
    parsed = parse_verdict('{ "reasoning": "fits\n\nwell" ,"needs_revision" : false }')
    assert parsed.passed is True and parsed.reasoning == "fits\n\nwell"
    broken = parse_verdict('{ "reasoning": "fits\nwell", "needs_revision": maybe }')
    assert broken.passed is None and broken.error is not None

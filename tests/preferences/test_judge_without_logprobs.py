"""A verification judge whose endpoint returns no log-probabilities: constrained answers, in
both orders, recorded per pair and counted in the verification report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient
from persona_testbed.preferences import PreferencesConfig, run_preferences_stage
from persona_testbed.testing import ScriptedBackend
from tests.preferences.helpers import REVISED, make_run, scripted_client

SMALL = {"per_persona_train": 2, "per_persona_test_seen": 1, "per_persona_test_unseen": 1}


def judge_without_logprobs(request: ChatRequest) -> str:
    """Names the label the tailored answer stands under (a JSON answer when constrained)."""
    user = request.messages[-1].content
    first = re.search(r"Answer A: (.*)", user)
    label = "A" if first and first.group(1).startswith(REVISED) else "B"
    return json.dumps({"answer": label}) if request.response_format else label


def test_a_judge_without_logprobs_scores_pairs_by_constrained_answers(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, train=6, heldout=3)
    client, _ = scripted_client(tmp_path)
    backend = ScriptedBackend(judge_without_logprobs, model_id="scripted:judge", logprobs=False)
    judge = LLMClient(
        backend, ClientSettings(cache_path=tmp_path / "judge.sqlite", show_progress=False)
    )
    result = run_preferences_stage(
        run, PreferencesConfig(**SMALL), client=client, judge_client=judge
    )
    frame = pl.read_parquet(result.preferences_path)
    assert set(frame["judge_method"]) == {"constrained"}
    assert frame["judge_p_chosen"].to_list() == [1.0] * len(frame)
    assert frame["judge_prefers_chosen"].all()
    constrained = [r for r in backend.calls if r.response_format is not None]
    assert len(constrained) == 2 * len(frame)  # both orders of every pair
    verification = json.loads(run.file("preferences/verification.json").read_text())
    assert verification["choice_methods"] == {"constrained": len(frame)}
    assert "no log-probabilities" in verification["method"]
    markdown = run.file("preferences/verification.md").read_text()
    assert f"Choices scored by: constrained {len(frame)} (pairs)." in markdown

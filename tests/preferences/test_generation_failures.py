"""Truncated base answers and empty revisions never reach the judge, the verification share or
the TRL export; they are counted per step in the manifest."""

from __future__ import annotations

from pathlib import Path

import datasets
import polars as pl

from persona_testbed.agreement.dpf import generate_base_answers
from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient
from persona_testbed.preferences import (
    GenerationSettings,
    PreferencesConfig,
    load_templates,
    run_preferences_stage,
)
from persona_testbed.testing import TruncatingBackend
from tests.preferences.helpers import dpf_script, make_run

ENDLESS = " ".join(["word"] * 1200)  # past the base budget (256) and its retry (512)
LONG_PROMPT = "situation number 1 "  # this prompt's base answer never fits
EMPTY_FOR = "situation number 2 "  # every revision for this prompt comes back empty


def script(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
    user = request.messages[-1].content
    if (
        not request.top_logprobs
        and LONG_PROMPT in user
        and not user.startswith(("Examine", "Revise"))
    ):
        return ENDLESS
    if user.startswith("Revise the COMPLETION") and EMPTY_FOR in user:
        return "REVISED PREFERENCE: \nDONE"
    return dpf_script(request)


def _client(tmp_path: Path) -> tuple[LLMClient, TruncatingBackend]:
    backend = TruncatingBackend(script, model_id="scripted:dpf")
    settings = ClientSettings(cache_path=tmp_path / "cache.sqlite", show_progress=False)
    return LLMClient(backend, settings), backend


def test_failed_pairs_are_never_judged_exported_or_shared(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=4, train=6, heldout=2)
    client, backend = _client(tmp_path)
    config = PreferencesConfig(per_persona_train=3, per_persona_test_seen=2,
                               per_persona_test_unseen=2)  # fmt: skip
    result = run_preferences_stage(run, config, client=client)
    frame = pl.read_parquet(result.preferences_path)
    truncated = frame.filter(pl.col("prompt").str.contains(LONG_PROMPT))
    empty = frame.filter(pl.col("prompt").str.contains(EMPTY_FOR))
    assert truncated.height > 0 and empty.height > 0
    assert (truncated["generation_failure"] == "base: truncated").all()
    assert (truncated["base_finish_reason"] == "length").all()
    assert (empty["generation_failure"] == "revision: empty").all()
    failed = truncated.height + empty.height
    usable = frame.filter(pl.col("generation_failure").is_null())
    assert usable.height == frame.height - failed
    assert (frame["revision_ok"] == frame["generation_failure"].is_null()).all()

    # Never judged: no judge call and no judgment for a failed pair.
    judge_calls = [r for r in backend.calls if r.top_logprobs]
    assert len(judge_calls) == 2 * usable.height
    not_made = frame.filter(pl.col("generation_failure").is_not_null())
    assert not_made["judge_p_chosen"].is_null().all()
    # The verification share is over complete pairs only.
    assert result.verification["overall"]["pairs"] == usable.height
    # The TRL export holds no failed pair and no empty answer.
    exported = datasets.load_from_disk(str(result.dataset_path))
    rows = [row for split in exported.values() for row in split]
    assert len(rows) == usable.height
    assert all(row["chosen"].strip() and row["rejected"].strip() for row in rows)
    assert not any(row["rejected"].startswith("word word") for row in rows)

    tallies = result.stats["generation"]
    assert tallies["base"]["failed"] == 1 and tallies["base"]["by_reason"] == {"truncated": 1}
    assert tallies["base"]["retried_by_reason"] == {"truncated": 1}
    assert tallies["revision"]["by_reason"] == {"empty": empty.height}
    assert tallies["critique"]["outputs"] == frame.height - truncated.height  # none for failures
    assert result.stats["generation_failures"] == failed
    record = run.stage_record("preferences")
    assert record is not None and record.stats["generation"] == tallies


def test_agreement_base_answers_drop_truncated_ones(tmp_path: Path) -> None:
    client, backend = _client(tmp_path)
    answers = generate_base_answers(
        client,
        load_templates("paper"),
        [f"Q {LONG_PROMPT}?", "Q short?"],
        GenerationSettings(max_tokens=256),
    )
    assert answers[0] == ""  # still cut at 512 tokens: no y_l, left out by the caller
    assert answers[1].startswith("base answer #0")
    assert sorted(r.max_tokens for r in backend.calls) == [256, 256, 512]

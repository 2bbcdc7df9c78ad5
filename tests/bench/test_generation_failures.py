"""Truncated and empty answers in the bench: a chain of thought cut before its Answer line is
asked again with twice the budget and judged on its answer; an answer still cut is a generation
failure, never judged, and accuracy is reported both without and with such failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

from persona_testbed.bench import BenchConfig, run_bench_stage
from persona_testbed.bench.critics import JudgeItem, critic_verdicts
from persona_testbed.bench.stage import LEADERBOARD_MD, SAMPLES, SUMMARY
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient
from persona_testbed.run import RunDir
from persona_testbed.testing import ScriptedBackend, TruncatingBackend

from .conftest import (
    MARK,
    answer_of,
    marker_judge,
    scripted_client,
    shown_attribute,
    verdict,
)

REASONING = " ".join(["because"] * 40)  # longer than CoT's first budget (2 x 16 tokens)
ENDLESS = " ".join(["blah"] * 200)  # longer than any budget


def model(request: ChatRequest) -> str:
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    if "Reasoning:" in system:
        return f"Reasoning: {REASONING}\nAnswer: Here is a tip. {MARK}"
    if shown_attribute(request, "sex") == "Female":
        return ENDLESS  # this persona's answers never fit the budget
    return f"Here is a tip. {MARK}"


def test_truncated_answers_are_retried_then_failed_and_never_judged(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    run = make_run(n_personas=10, n_prompts=4)
    cache = tmp_path / "cache.sqlite"
    settings = ClientSettings(cache_path=cache, show_progress=False, concurrency=4)
    judged: list[str] = []

    def judge(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
        judged.append(answer_of(request))
        return marker_judge(request)

    clients = {
        "m": LLMClient(TruncatingBackend(model, model_id="scripted:model"), settings),
        "j": scripted_client(judge, "scripted:judge", cache),
    }
    config = BenchConfig(
        models=("m",), judge="j", methods=("persona", "persona-cot"), n=10, max_tokens=16
    )
    result = run_bench_stage(run, config, clients=clients)
    samples = pl.read_parquet(run.file(SAMPLES))

    cot = samples.filter(pl.col("method") == "persona-cot")
    # Cut at 32 tokens without its Answer line, then complete at 64: judged on the answer only.
    assert cot["generation_attempts"].to_list() == [2] * 10
    assert cot["generation_failure"].is_null().all()
    assert cot["finish_reason"].to_list() == ["stop"] * 10
    assert cot["answer"].to_list() == [f"Here is a tip. {MARK}"] * 10
    assert cot["answer_parse_error"].is_null().all()
    assert cot["passed"].all()

    persona = samples.filter(pl.col("method") == "persona")
    female = persona.filter(pl.col("persona_text").str.contains("sex: Female"))
    assert 0 < female.height < persona.height
    assert (female["generation_failure"] == "truncated").all()
    assert female["finish_reason"].to_list() == ["length"] * female.height
    assert female["passed"].is_null().all() and female["verdict_error"].is_null().all()
    assert not any("blah" in text for text in judged)  # a failure is never judged

    by_method = {m.method: m for m in result.metrics}
    m = by_method["persona"]
    assert m.generation_failures == female.height
    assert m.accuracy.value == 1.0  # failures excluded: every complete answer passes
    counted = (persona.height - female.height) / persona.height
    assert m.accuracy_failures_counted.value == counted  # failures counted as failures
    summary = json.loads(run.file(SUMMARY).read_text())
    persona_row = next(r for r in summary["results"] if r["method"] == "persona")
    assert persona_row["accuracy_failures_counted"]["value"] == counted
    assert "accuracy, failures counted" in run.file(LEADERBOARD_MD).read_text()

    stats = run.stage_record("bench")
    assert stats is not None
    tally = stats.stats["generation"]["answer (scripted:model)"]
    assert tally["outputs"] == 20
    assert tally["failed"] == female.height
    assert tally["by_reason"] == {"truncated": female.height}
    assert tally["retried"] == 10 + female.height
    assert stats.stats["generation_failures"] == female.height


def test_retry_failed_reasks_cached_unparseable_verdicts_only(tmp_path: Path) -> None:
    fixed = False

    def judge(request: ChatRequest) -> str:
        if "[[BAD]]" in json.dumps([m.content for m in request.messages]):
            return verdict(False) if fixed else "no verdict today"
        return verdict(True)

    items = [JudgeItem("sex: Female", "Q?", text) for text in ("fine", "[[BAD]]", "ok")]
    templates = TemplateSet.load()

    def verdicts(**settings: object) -> tuple[list[bool | None], int]:
        backend = ScriptedBackend(judge, model_id="scripted:judge")
        client = LLMClient(
            backend,
            ClientSettings(cache_path=tmp_path / "c.sqlite", show_progress=False, **settings),
        )
        found = critic_verdicts(client, items, templates, max_tokens=64)
        return [v.passed for v in found], len(backend.calls)

    assert verdicts() == ([False, None, False], 4)  # 3 asked + the re-ask of the bad one
    fixed = True
    assert verdicts() == ([False, None, False], 0)  # a plain re-run replays the cache
    # --retry-failed: only the failed verdict is asked again (its first request parses now).
    assert verdicts(refresh_failed=True) == ([False, True, False], 1)

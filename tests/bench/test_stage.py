"""The bench stage end to end with scripted models: planted signals must be recovered."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.bench import BenchConfig, Method, run_bench_stage
from persona_testbed.bench.stage import (
    LEADERBOARD_CSV,
    LEADERBOARD_MD,
    LOO_CSV,
    SAMPLES,
    SLICES_CSV,
    SUMMARY,
)
from persona_testbed.errors import ConfigMismatchError, InputError
from persona_testbed.llm import ChatRequest
from persona_testbed.run import RunDir
from persona_testbed.testing import ScriptedBackend

from .conftest import MARK, clients_for, draw, marker_judge, scripted_client, shown_attribute

PLANTED_RATE = 0.6  # P(marker) per sample for Female personas; 0 for everyone else


def planted_model(request: ChatRequest) -> str:
    """Marks an answer with probability PLANTED_RATE when the persona shown is Female."""
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    if request.messages[-1].content.endswith("for this question:"):
        return "The user is a woman." if "sex: Female" in system else "The user likes tea."
    sex = shown_attribute(request, "sex")
    marked = sex == "Female" and draw(system, request.sample_index) < PLANTED_RATE
    answer = f"Here is a tip. {MARK if marked else ''}".strip()
    if "Reasoning:" in system:
        return f"Reasoning: as a {sex} they care.\nAnswer: {answer}"
    return answer


def covers(low: float | None, high: float | None, value: float) -> bool:
    return low is not None and high is not None and low - 1e-12 <= value <= high + 1e-12


def test_planted_signal_is_recovered(make_run: Callable[..., RunDir], tmp_path: Path) -> None:
    run = make_run(n_personas=60, n_prompts=10)
    config = BenchConfig(
        models=("m",),
        judge="j",
        n=120,
        k=8,
        seed=3,
        slices=("sex=Female & political views=Republican",),
    )
    result = run_bench_stage(run, config, clients=clients_for(tmp_path, planted_model))
    samples = pl.read_parquet(run.file(SAMPLES))
    assert samples.height == 120 * 8 * 4
    assert set(samples["model"]) == {"scripted:model"}
    assert set(samples["judge_model"]) == {"scripted:judge"}

    female_pairs = samples.filter(pl.col("persona_text").str.contains("sex: Female"))[
        "pair_id"
    ].n_unique()
    female_share = female_pairs / 120
    by_method = {m.method: m for m in result.metrics}
    assert by_method["no-persona"].accuracy.value == 0.0  # never sees the persona
    for method in ("persona", "persona-cot", "persona-summary"):
        m = by_method[method]
        expected = PLANTED_RATE * female_share
        assert covers(m.accuracy.low, m.accuracy.high, expected), (method, m.accuracy)
        for j in range(1, 9):
            planted = female_share * (1 - (1 - PLANTED_RATE) ** j)
            estimate = m.pass_at[j]
            assert covers(estimate.low, estimate.high, planted), (method, j, estimate)
        assert m.pass_at[8].value is not None and m.pass_at[1].value is not None
        assert m.pass_at[8].value > m.pass_at[1].value

    slices = pl.read_csv(run.file(SLICES_CSV))
    persona_sex = slices.filter((pl.col("method") == "persona") & (pl.col("slice") == "sex"))
    female = persona_sex.filter(pl.col("value") == "Female").row(0, named=True)
    male = persona_sex.filter(pl.col("value") == "Male").row(0, named=True)
    assert covers(female["ci_low"], female["ci_high"], PLANTED_RATE)
    # No male pair passes: not a zero-width interval but Wilson with one observation per
    # cluster (the 10 questions are fewer than the male personas).
    assert (male["accuracy"], male["ci_low"]) == (0.0, 0.0)
    assert 0.0 < male["ci_high"] < 0.3
    match = slices.filter(
        (pl.col("method") == "persona")
        & (pl.col("slice") == "sex=Female & political views=Republican")
        & (pl.col("value") == "match")
    ).row(0, named=True)
    assert match["pairs"] > 0
    assert covers(match["ci_low"], match["ci_high"], PLANTED_RATE)

    # Subtlety: only the CoT answers say "as a ..."; the judge flags exactly those.
    assert by_method["persona-cot"].not_subtle.value == 0.0  # the reasoning is not judged
    assert by_method["persona"].not_subtle.value == 0.0
    leaderboard = pl.read_csv(run.file(LEADERBOARD_CSV))
    assert leaderboard["method"].to_list() == [m.value for m in Method]
    assert "pass@8" in leaderboard.columns
    markdown = run.file(LEADERBOARD_MD).read_text()
    assert "accuracy [95% CI]" in markdown and "scripted:judge" in markdown


def test_cot_without_its_answer_line_is_a_generation_failure(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    def no_delimiter(request: ChatRequest) -> str:
        return f"as a {shown_attribute(request, 'sex')} person, do this {MARK}"

    run = make_run(n_personas=4, n_prompts=2)
    config = BenchConfig(models=("m",), judge="j", methods=(Method.PERSONA_COT,), n=4)
    clients = clients_for(tmp_path, no_delimiter)
    result = run_bench_stage(run, config, clients=clients)
    samples = pl.read_parquet(run.file(SAMPLES))
    # Asked again with twice the budget, still no Answer line: never judged, never a pass.
    assert samples["generation_failure"].to_list() == ["no answer line"] * 4
    assert samples["generation_attempts"].to_list() == [2] * 4
    assert samples["passed"].is_null().all() and samples["not_subtle"].is_null().all()
    (metrics,) = result.metrics
    assert metrics.generation_failures == 4
    assert metrics.accuracy.value is None  # nothing complete to judge
    assert metrics.accuracy_failures_counted.value == 0.0
    judge_backend = clients["j"].backend
    assert isinstance(judge_backend, ScriptedBackend) and judge_backend.calls == []


def test_malformed_verdicts_are_recorded_and_excluded(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    def model(request: ChatRequest) -> str:
        if "number 0" in request.messages[-1].content:
            return "[[BAD]]"
        return f"tip {MARK}" if shown_attribute(request, "sex") == "Female" else "tip"

    def judge(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
        if "[[BAD]]" in json.dumps([m.content for m in request.messages]) and not (
            request.top_logprobs
        ):
            return "I cannot decide."
        return marker_judge(request)

    run = make_run(n_personas=6, n_prompts=3)
    clients = clients_for(tmp_path, model, judge)
    config = BenchConfig(models=("m",), judge="j", methods=(Method.PERSONA,), n=18, k=2)
    result = run_bench_stage(run, config, clients=clients)
    samples = pl.read_parquet(run.file(SAMPLES))
    errors = samples.filter(pl.col("verdict_error").is_not_null())
    assert errors.height == 6 * 2  # every sample of the 6 pairs on question 0
    assert errors["passed"].null_count() == errors.height
    assert set(errors["verdict_raw"]) == {"I cannot decide."}
    assert set(errors["verdict_attempts"]) == {2}
    valid = samples.filter(pl.col("verdict_error").is_null())
    (metrics,) = result.metrics
    assert metrics.verdict_errors == 12
    assert metrics.samples == 36
    assert metrics.accuracy.trials == valid.height == 24
    assert metrics.accuracy.value == pytest.approx(valid["passed"].mean())
    summary = json.loads(run.file(SUMMARY).read_text())
    assert summary["results"][0]["verdict_errors"] == 12
    assert run.stage_record("bench") is not None


def test_leave_one_attribute_out(make_run: Callable[..., RunDir], tmp_path: Path) -> None:
    def model(request: ChatRequest) -> str:
        return f"tip {MARK}" if shown_attribute(request, "sex") == "Female" else "tip"

    # Enough questions that the interval, which also resamples questions, can exclude 0.
    run = make_run(n_personas=10, n_prompts=12)
    config = BenchConfig(
        models=("m",), judge="j", methods=(Method.PERSONA,), n=20, loo=("sex", "religion")
    )
    clients = clients_for(tmp_path, model)
    run_bench_stage(run, config, clients=clients)
    loo = pl.read_csv(run.file(LOO_CSV))
    rows = {r["attribute"]: r for r in loo.iter_rows(named=True)}
    assert rows["religion"]["delta"] == 0.0
    assert rows["sex"]["accuracy_without"] == 0.0
    assert rows["sex"]["delta"] == pytest.approx(-rows["sex"]["accuracy_full"])
    assert rows["sex"]["delta_ci_high"] < 0
    loo_samples = pl.read_parquet(run.file("bench/loo_samples.parquet"))
    assert set(loo_samples["removed_attribute"]) == {"sex", "religion"}
    # The judge still saw the full persona.
    assert loo_samples["persona_text"].str.contains("sex: ").all()


def test_rerun_is_served_from_the_cache_and_config_changes_need_force(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    run = make_run(n_personas=4, n_prompts=2)
    clients = clients_for(tmp_path, planted_model)
    config = BenchConfig(models=("m",), judge="j", n=4, k=2)
    first = run_bench_stage(run, config, clients=clients)
    model_calls = first.usage["scripted:model"].calls
    second = run_bench_stage(run, config, clients=clients)
    assert second.usage["scripted:model"].calls == model_calls  # nothing new was sent
    assert second.leaderboard.equals(first.leaderboard)
    with pytest.raises(ConfigMismatchError, match="changed: k"):
        run_bench_stage(run, BenchConfig(models=("m",), judge="j", n=4, k=3), clients=clients)
    run_bench_stage(
        run, BenchConfig(models=("m",), judge="j", n=4, k=3), clients=clients, force=True
    )


def test_two_models_share_the_judge(make_run: Callable[..., RunDir], tmp_path: Path) -> None:
    run = make_run(n_personas=4, n_prompts=2)
    clients = clients_for(tmp_path, planted_model)
    clients["other"] = scripted_client(lambda r: f"x {MARK}", "scripted:other", tmp_path / "o.db")
    config = BenchConfig(models=("m", "other"), judge="j", methods=(Method.PERSONA,), n=4)
    result = run_bench_stage(run, config, clients=clients)
    assert [m.model for m in result.metrics] == ["scripted:model", "scripted:other"]
    assert result.metrics[1].accuracy.value == 1.0
    assert {m.judge_model for m in result.metrics} == {"scripted:judge"}


def test_loo_needs_the_persona_method(make_run: Callable[..., RunDir]) -> None:
    run = make_run()
    config = BenchConfig(methods=(Method.NO_PERSONA,), loo=("sex",))
    with pytest.raises(InputError, match="--loo compares against the 'persona' method"):
        run_bench_stage(run, config, clients={})

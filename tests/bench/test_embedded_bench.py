"""PERSONA Bench end to end on the real embedded model: 2 methods x 3 pairs x k=2.

The 135M model is far too small for meaningful scores: this checks that the pipeline runs and
records everything, not what the numbers are.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl
import pytest

from persona_testbed.bench import BenchConfig, Method, run_bench_stage
from persona_testbed.bench.stage import ACCURACY_PNG, LEADERBOARD_MD, PASSK_PNG, SAMPLES, SUMMARY
from persona_testbed.llm import ClientSettings
from persona_testbed.run import RunDir

pytestmark = pytest.mark.embedded

MODEL = "local:smollm2-135m"


def test_bench_on_the_embedded_model(make_run: Callable[..., RunDir]) -> None:
    run = make_run(n_personas=3, n_prompts=2)
    config = BenchConfig(
        models=(MODEL,),
        judge=MODEL,
        methods=(Method.NO_PERSONA, Method.PERSONA),
        n=3,
        k=2,
        # The templates ask for two to four sentences; 128 tokens is enough for most answers
        # (a cut answer is a recorded generation failure, never judged).
        max_tokens=128,
        judge_max_tokens=96,
    )
    result = run_bench_stage(run, config, settings=ClientSettings(show_progress=False))

    samples = pl.read_parquet(run.file(SAMPLES))
    assert samples.height == 2 * 3 * 2
    assert set(samples["model"]) == {MODEL} and set(samples["judge_model"]) == {MODEL}
    failed = samples["generation_failure"].is_not_null()
    answered = samples.filter(~failed)
    assert answered.height >= samples.height // 2, samples["generation_failure"].to_list()
    assert answered["answer"].str.strip_chars().str.len_chars().min() > 0  # type: ignore[operator]
    # Every answer got either a verdict or a recorded verdict error, never neither; a failed
    # generation is never judged.
    judged = answered["passed"].is_not_null() | answered["verdict_error"].is_not_null()
    assert judged.all()
    assert samples.filter(failed)["passed"].is_null().all()
    assert answered.filter(pl.col("passed").is_null())["verdict_raw"].null_count() == 0
    assert answered["p_not_subtle"].is_not_null().all()  # Yes/No got probability mass

    assert [m.method for m in result.metrics] == ["no-persona", "persona"]
    for metrics in result.metrics:
        assert metrics.samples == 6
        assert metrics.accuracy.trials + metrics.verdict_errors + metrics.generation_failures == 6
        assert set(metrics.pass_at) == {1, 2}
    usage = result.usage[MODEL]
    # 12 answers, 12+ critic verdicts, 12 subtlety checks (no-persona answers of pairs that share
    # a question are the same request, so some come from the cache).
    assert usage.calls + usage.cache_hits >= 12 + 2 * answered.height
    summary = json.loads(run.file(SUMMARY).read_text())
    assert summary["models"] == [MODEL] and summary["judge_model"] == MODEL
    for name in (LEADERBOARD_MD, ACCURACY_PNG, PASSK_PNG):
        assert run.file(name).stat().st_size > 0

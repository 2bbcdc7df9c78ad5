"""`persona run CONFIG --dry-run` and `persona preferences --dry-run` plan the preferences stage
with one planner, so the same job gets the same estimate (issue 18, "plans disagree")."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.cli.app import main
from persona_testbed.llm import PriceTable
from persona_testbed.pipeline import RunConfig, load_yaml_model
from persona_testbed.pipeline.plan import PAPER_KEPT_PROMPTS, plan_run
from persona_testbed.preferences.stage import plan_for_run
from persona_testbed.run import RunDir
from tests.bench.conftest import write_personas as write_bench_personas
from tests.bench.conftest import write_prompts as write_bench_prompts
from tests.preferences.helpers import write_personas


def paper_like(tmp_path: Path) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": "openai:gpt-4o",
            "stages": ["personas", "prompts", "preferences"],
            "personas": {"n": 1586},
            "prompts": {"source": "prism", "path": str(tmp_path / "absent.jsonl")},
        }
    )


def test_both_dry_runs_give_the_same_preferences_plan(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = write_personas(run, 6)
    # Personas three times the typical length: the run directory's lengths must count in both.
    frame = pl.read_parquet(path)
    frame.with_columns(pl.lit("quirky " * 550).alias("defining quirks")).write_parquet(path)
    config = paper_like(tmp_path)
    prices = PriceTable()
    rows = [r for r in plan_run(config, prices, run) if r.stage == "preferences"]
    alone = plan_for_run(
        run, config.preferences, prices=prices, plan_personas=1586, plan_prompts=PAPER_KEPT_PROMPTS
    )
    assert [(r.step, r.calls, r.prompt_tokens, r.cost_usd) for r in rows] == [
        (s.step, s.calls, s.prompt_tokens, s.cost_usd) for s in alone.steps
    ]


def test_the_cli_dry_runs_print_the_same_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = write_personas(run, 6)
    frame = pl.read_parquet(path)
    frame.with_columns(pl.lit("quirky " * 550).alias("defining quirks")).write_parquet(path)
    config = tmp_path / "paper.yaml"
    config.write_text(
        "model: openai:gpt-4o\nstages: [personas, prompts, preferences]\npersonas:\n  n: 1586\n"
        "prompts:\n  source: prism\n  path: absent.jsonl\n"
    )
    main(["run", str(config), "--dry-run", "--out", str(run)])
    pipeline_out = capsys.readouterr().out
    args = ["preferences", "--run", str(run), "--dry-run", "--paper-scale"]
    assert main([*args, "--model", "openai:gpt-4o"]) == 0
    preferences_out = capsys.readouterr().out
    plan = plan_for_run(
        run,
        paper_like(tmp_path).preferences,
        prices=PriceTable(),
        plan_personas=1586,
        plan_prompts=PAPER_KEPT_PROMPTS,
    )
    total = f"{plan.cost_usd:,.2f}"
    assert total.replace(",", "") in preferences_out.replace(",", "")
    per_step = [f"{s.cost_usd:,.2f}" for s in plan.steps]
    assert all(cost in pipeline_out for cost in per_step)


def test_both_dry_runs_give_the_same_bench_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: `persona bench --dry-run` and `persona run --dry-run` used different arithmetic
    for the bench calls. Both now plan through the bench stage's own plan."""
    run = RunDir.create(tmp_path / "run")
    write_bench_personas(run.file("personas.parquet"), 5)
    write_bench_prompts(run.file("prompts.parquet"), 4)
    config = tmp_path / "bench.yaml"
    config.write_text(
        "model: openai:gpt-4o-mini\njudge: openai:gpt-4o\nstages: [bench]\n"
        "bench:\n  n: 6\n  k: 3\n  methods: [persona, persona-summary]\n  loo: [religion]\n"
    )
    assert main(["run", str(config), "--dry-run", "--out", str(run.path)]) == 0
    pipeline_out = capsys.readouterr().out
    args = ["bench", "--run", str(run.path), "--dry-run", "--n", "6", "--k", "3"]
    args += ["--methods", "persona,persona-summary", "--loo", "religion"]
    assert main([*args, "--model", "openai:gpt-4o-mini", "--judge", "openai:gpt-4o"]) == 0
    bench_out = capsys.readouterr().out
    loaded = load_yaml_model(config, RunConfig)
    rows = [r for r in plan_run(loaded, PriceTable(), run.path) if r.stage == "bench"]
    assert {r.step for r in rows} >= {"answers", "critic verdicts"}
    for row in rows:
        # The bench command prints "MODEL: STEP: CALLS calls"; the run's table has the same.
        assert f"{row.model}: {row.step}: {row.calls} calls" in bench_out
        assert f"{row.calls:,}" in pipeline_out
    assert sum(r.calls for r in rows) == sum(
        int(line.split(": ")[2].split()[0])
        for line in bench_out.splitlines()
        if line.strip().startswith("openai:") and " calls" in line
    )

"""`persona run CONFIG --dry-run` and `persona preferences --dry-run` plan the preferences stage
with one planner, so the same job gets the same estimate (issue 18, "plans disagree")."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.cli.app import main
from persona_testbed.llm import PriceTable
from persona_testbed.pipeline import RunConfig
from persona_testbed.pipeline.plan import PAPER_KEPT_PROMPTS, plan_run
from persona_testbed.preferences.stage import plan_for_run
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

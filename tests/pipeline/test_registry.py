"""The stage registry (issue 14): a stage is one registered object; `persona run` runs every
registered stage in order, checks the chain of artifacts before the first stage, and its dry run
includes every stage's own plan. A toy stage added here touches nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from pydantic import BaseModel, ConfigDict

from persona_testbed.cli.app import main
from persona_testbed.llm import DEFAULT_MODEL, Message
from persona_testbed.pipeline import RunConfig
from persona_testbed.run import RunDir
from persona_testbed.stages import (
    ModelPool,
    PlanContext,
    PlanRow,
    Stage,
    fixed,
    register,
    stage_names,
    unregister,
)
from persona_testbed.stages.plan import estimate_row
from persona_testbed.testing.loopback import LoopbackServer
from tests.preferences.helpers import make_run

JUDGE_RULE = {"contains": "Answer A:", "reply": "A", "logprobs": {"A": -0.3, "B": -1.4}}
TOY_RULE = {"contains": "Rate this pair", "reply": "7"}


class ToyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = DEFAULT_MODEL
    seed: int = 0
    question: str = "Rate this pair"


def run_toy(run: RunDir, config: ToyConfig, models: ModelPool, force: bool) -> None:
    pairs = pl.read_parquet(run.file("preferences.parquet"))
    client = models.get(config.model)
    with run.stage("toy", config.model_dump(mode="json"), seed=config.seed, force=force) as stage:
        requests = [
            client.request([Message(role="user", content=f"{config.question}: {pair_id}")])
            for pair_id in pairs["pair_id"]
        ]
        replies = [result.text for result in client.complete_batch(requests)]
        stage.write_json("toy/ratings.json", {"pairs": pairs.height, "replies": replies})
        stage.add_usage(client.usage)


def plan_toy(config: ToyConfig, context: PlanContext) -> list[PlanRow]:
    return [estimate_row("toy", "ratings", config.model, 10, 40.0, 1, context.prices)]


TOY: Stage[ToyConfig] = Stage(
    name="toy",
    config_type=ToyConfig,
    run=run_toy,
    reads=fixed("preferences.parquet"),
    writes=fixed("toy/ratings.json"),
    plan=plan_toy,
    models=lambda config: (config.model,),
)


@pytest.fixture
def toy() -> Iterator[None]:
    register(TOY)  # the one registration line
    yield
    unregister("toy")


@pytest.mark.usefixtures("toy")
def test_a_registered_stage_runs_after_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stage_names()[-1] == "toy"
    run = make_run(tmp_path / "run", personas=2, train=2, heldout=1)
    with LoopbackServer() as server:
        server.set_rules([JUDGE_RULE, TOY_RULE])
        config = tmp_path / "run.yaml"
        config.write_text(
            f"model: openai:loopback\nseed: 4\nstages: [preferences, toy]\n"
            f"llm:\n  base_url: {server.base_url}\n  cache: {tmp_path / 'cache.sqlite'}\n"
            "preferences:\n  per_persona_train: 2\n  per_persona_test_seen: 0\n"
            "  per_persona_test_unseen: 1\ntoy:\n  question: Rate this pair\n"
        )
        assert main(["run", str(config), "--dry-run", "--out", str(run.path)]) == 0
        planned = capsys.readouterr().out
        assert "toy" in planned and "ratings" in planned
        assert main(["run", str(config), "--out", str(run.path), "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert out.index("[preferences] running") < out.index("[toy] running")
        ratings = json.loads(run.file("toy/ratings.json").read_text())
        pairs = pl.read_parquet(run.file("preferences.parquet")).height
        assert ratings["pairs"] == pairs > 0 and ratings["replies"] == ["7"] * pairs
        record = run.stage_record("toy")
        assert record is not None and record.complete and record.seed == 4  # the run's seed
        # A second run finds the toy stage done for the same config.
        assert main(["run", str(config), "--out", str(run.path), "--no-progress"]) == 0
        assert "[toy] already done for this config: skipped" in capsys.readouterr().out


@pytest.mark.usefixtures("toy")
def test_the_toy_section_is_strict_and_shares_the_model(tmp_path: Path) -> None:
    config = RunConfig.model_validate({"model": "openai:m", "seed": 2, "toy": {}})
    assert config.section("toy") == ToyConfig(model="openai:m", seed=2)
    assert "openai:m" in config.models()
    with pytest.raises(ValueError, match="questoin"):
        RunConfig.model_validate({"toy": {"questoin": "x"}})


@pytest.mark.usefixtures("toy")
def test_the_chain_is_checked_before_the_first_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The toy stage reads preferences.parquet: without the preferences stage in the run and
    without the file, the run fails before any stage, naming the file."""
    config = tmp_path / "run.yaml"
    config.write_text("model: openai:m\nstages: [toy]\n")
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[toy]" in err and "preferences.parquet" in err
    assert not (out / "toy").exists()


def test_unknown_stage_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown stage 'toy' \\(known: personas, prompts"):
        RunConfig.model_validate({"stages": ["toy"]})

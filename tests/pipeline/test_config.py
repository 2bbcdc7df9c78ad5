from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from persona_testbed.agreement import LooConfig, ModelsConfig
from persona_testbed.bench import BenchConfig
from persona_testbed.census import PersonaConfig
from persona_testbed.cli.app import main
from persona_testbed.errors import InputError
from persona_testbed.pipeline import RunConfig, fingerprints, load_yaml_model
from persona_testbed.preferences.stage import PreferencesConfig
from persona_testbed.prompts.stage import PromptsConfig

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_unknown_key_is_an_error_naming_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "model: local:smollm2-135m\npersonas:\n  n: 5\n  rkae: us-2022\n")
    with pytest.raises(InputError) as caught:
        load_yaml_model(path, RunConfig)
    message = str(caught.value)
    assert message.startswith(f"{path}:4: personas.rkae: unknown key")


def test_unknown_top_level_key_fails_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "modle: openai:gpt-4o\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{path}:1: modle: unknown key" in err


def test_bad_value_and_bad_yaml_name_the_place(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 0\nbench:\n  k: many\n")
    with pytest.raises(InputError, match=r":3: bench\.k: "):
        load_yaml_model(path, RunConfig)
    broken = write(tmp_path, "personas: [n: 5\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_yaml_model(broken, RunConfig)


def test_model_and_seed_are_named_once_and_reach_every_stage(tmp_path: Path) -> None:
    path = write(tmp_path, "model: openai:m\njudge: openai:j\nseed: 7\nbench:\n  n: 3\n")
    config = load_yaml_model(path, RunConfig)
    assert config.personas.model == config.prompts.model == config.preferences.model == "openai:m"
    assert config.bench.models == ("openai:m",) and config.bench.judge == "openai:j"
    assert config.preferences.judge == "openai:j"
    assert {config.personas.seed, config.prompts.seed, config.bench.seed} == {7}


def test_fingerprints_change_downstream_only() -> None:
    base = RunConfig.model_validate({"personas": {"n": 5}})
    changed = RunConfig.model_validate({"personas": {"n": 5}, "bench": {"n": 9}})
    a, b = fingerprints(base), fingerprints(changed)
    assert a["personas"] == b["personas"] and a["preferences"] == b["preferences"]
    assert a["bench"] != b["bench"]
    upstream = fingerprints(RunConfig.model_validate({"personas": {"n": 6}}))
    assert all(upstream[s] != a[s] for s in a)  # a change upstream reaches every later stage


@pytest.mark.parametrize("name", ["demo.yaml", "paper.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_yaml_model(REPO / "configs" / name, RunConfig)
    assert config.stages[0] == "personas"


def test_paper_dry_run_prints_the_paper_scale_plan(capsys: pytest.CaptureFixture[str]) -> None:
    # The plan is printed even without PRISM's file; the dry run then says the real run
    # could not start (exit 2) instead of that all is well.
    assert main(["run", str(REPO / "configs" / "paper.yaml"), "--dry-run"]) == 2
    captured = capsys.readouterr()
    out = captured.out
    assert "317,200 pairs" in out and "1,586" in out and "nothing was called" in out
    assert "conversations.jsonl" in captured.err and captured.err.count("\n") == 1


def test_agreement_section_is_strict_and_gets_the_shared_model(tmp_path: Path) -> None:
    path = write(tmp_path, "model: openai:m\nseed: 3\nagreement:\n  loo:\n    pairz: 3\n")
    with pytest.raises(InputError, match=r":5: agreement\.loo\.pairz: unknown key"):
        load_yaml_model(path, RunConfig)
    config = RunConfig.model_validate(
        {"model": "openai:m", "seed": 3, "agreement": {"models": {"annotators": ["a:x", "a:y"]}}}
    )
    assert config.agreement.loo is not None
    assert (config.agreement.loo.model, config.agreement.loo.seed) == ("openai:m", 3)
    assert config.agreement.models is not None and config.agreement.models.seed == 3
    assert config.agreement.stage_names() == ("agreement-loo", "agreement-models")
    assert {"a:x", "a:y"} <= set(config.models())
    without_loo = RunConfig.model_validate({"agreement": {"loo": None}})
    assert without_loo.agreement.stage_names() == ()


def test_agreement_models_needs_two_annotators_or_humans(tmp_path: Path) -> None:
    path = write(tmp_path, "agreement:\n  models:\n    annotators: [openai:a]\n")
    with pytest.raises(InputError, match="two annotator models, or human labels"):
        load_yaml_model(path, RunConfig)


def test_dry_run_plans_the_agreement_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(REPO / "configs" / "demo.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "LOO critique + revision" in out and "1 attribute x 2 pairs x 1 questions" in out
    # Two annotators in the model-agreement study, each labelling in both option orders.
    assert out.count("role-play labels (both orders)") == 3


def test_a_validator_error_names_the_file_and_line(tmp_path: Path) -> None:
    """Issue 14: a bad `bench.loo` value used to escape pydantic as "--loo: ..." without a place."""
    path = write(tmp_path, "seed: 0\nbench:\n  n: 3\n  loo: [religion, shoe size]\n")
    with pytest.raises(InputError) as caught:
        load_yaml_model(path, RunConfig)
    assert str(caught.value) == f"{path}:4: bench.loo: unknown attribute 'shoe size'"
    sliced = write(tmp_path, "bench:\n  slices: ['gender=Female']\n")
    with pytest.raises(InputError, match=r":2: bench\.slices: --slice 'gender=Female'"):
        load_yaml_model(sliced, RunConfig)


@pytest.mark.parametrize(
    "config_type",
    [PersonaConfig, PromptsConfig, PreferencesConfig, BenchConfig, LooConfig, ModelsConfig],
)
def test_stage_configs_refuse_unknown_keys(config_type: type[BaseModel]) -> None:
    """Issue 14: the stage config classes themselves (not only the run file's sections)."""
    with pytest.raises(ValidationError, match="sede"):
        config_type.model_validate({"sede": 3, "annotators": ["openai:a", "openai:b"]})


def test_dry_run_shows_online_and_batch_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    config = tmp_path / "run.yaml"
    config.write_text("model: openai:gpt-4o\nstages: [prompts]\nprompts: {source: demo}\n")
    assert main(["run", str(config), "--dry-run", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    line = next(text for text in out.splitlines() if text.startswith("openai:gpt-4o:"))
    online, batch = (float(x) for x in re.findall(r"~\$([\d,.]+)", line))
    assert online > 0 and batch == pytest.approx(online / 2, abs=0.01)
    assert "through a provider batch API" in line and "batch USD" in out

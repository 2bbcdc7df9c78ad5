from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from persona_testbed.cli.prompts import prompts as prompts_command
from persona_testbed.cli.prompts import register
from persona_testbed.errors import ConfigMismatchError, InputError, PersonaError
from persona_testbed.llm import ChatRequest
from persona_testbed.prompts import PromptsConfig, run_prompts_stage
from persona_testbed.run import RunDir
from tests.prompts.helpers import (
    FACTUAL,
    PRISM_FIXTURE,
    HashingEmbedder,
    controversy_script,
    scripted_client,
)

CONTRACT = ("prompt_id", "text", "source", "source_id", "topic", "split", "kept", "drop_reason")
EXPECTED_DROPS = {
    "c004": "no_question_mark",
    "c005": "too_short",
    "c006": "too_short",
    "c008": "no_question_mark",
    "c010": "duplicate",
    "c011": "not_controversial",
    "c014": "not_controversial",
    "c018": "duplicate",
    "c019": "no_question_mark",
    "c022": "not_controversial",
}


def _prism_config(**overrides: object) -> PromptsConfig:
    return PromptsConfig(source="prism", path=PRISM_FIXTURE, **overrides)


def test_prism_fixture_keeps_exactly_the_prompts_that_pass(tmp_path: Path) -> None:
    client, backend = scripted_client(tmp_path)
    run = RunDir.create(tmp_path / "run")
    result = run_prompts_stage(run, _prism_config(), client=client, embedder=HashingEmbedder())
    frame = pl.read_parquet(result.prompts_path)
    assert frame.columns[: len(CONTRACT)] == list(CONTRACT)
    drops = {
        row["source_id"]: row["drop_reason"]
        for row in frame.filter(~pl.col("kept")).iter_rows(named=True)
    }
    assert drops == EXPECTED_DROPS
    kept = frame.filter("kept")
    assert len(kept) == 24 - len(EXPECTED_DROPS)
    assert kept["drop_reason"].null_count() == len(kept)
    assert set(kept["split"]) == {"train", "heldout"}
    assert kept["topic"].null_count() == 0 and kept["cluster"].null_count() == 0
    assert frame.filter(~pl.col("kept"))["split"].null_count() == len(EXPECTED_DROPS)
    # The LLM only saw prompts that passed the rule filters: two orders each.
    scored = frame.filter(pl.col("p_controversial").is_not_null())
    assert len(backend.calls) == 2 * len(scored) == 2 * (len(kept) + 3)
    factual = frame.filter(pl.col("text").str.contains("|".join(FACTUAL)))
    assert factual["p_controversial"].to_list() == pytest.approx([0.1, 0.1, 0.1])
    assert kept["p_controversial"].min() == pytest.approx(0.9)
    # Outputs and manifest.
    topics = json.loads(run.file("prompts/topics.json").read_text())
    assert sum(c["size"] for c in topics["clusters"]) == len(kept)
    assert run.file("prompts/topics.png").read_bytes()[:4] == b"\x89PNG"
    record = run.stage_record("prompts")
    assert record is not None and record.stats["kept"] == len(kept)
    assert record.stats["drop_reasons"]["not_controversial"] == 3
    assert record.models == ["scripted:controversy"]


def test_rerun_is_served_from_the_cache_and_new_config_needs_force(tmp_path: Path) -> None:
    client, backend = scripted_client(tmp_path)
    run = RunDir.create(tmp_path / "run")
    first = run_prompts_stage(run, _prism_config(), client=client, embedder=HashingEmbedder())
    sent = len(backend.calls)
    second = run_prompts_stage(run, _prism_config(), client=client, embedder=HashingEmbedder())
    assert len(backend.calls) == sent
    assert pl.read_parquet(first.prompts_path).equals(pl.read_parquet(second.prompts_path))
    with pytest.raises(ConfigMismatchError, match="min_words"):
        run_prompts_stage(
            run, _prism_config(min_words=3), client=client, embedder=HashingEmbedder()
        )


def test_threshold_zero_calls_no_model_and_demo_tags_become_topics(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    config = PromptsConfig(source="demo", controversy_threshold=0.0, seed=5)
    result = run_prompts_stage(run, config, client=None, embedder=HashingEmbedder())
    frame = pl.read_parquet(result.prompts_path)
    assert frame["kept"].all()
    assert frame["p_controversial"].null_count() == len(frame)
    assert (frame["topic"] == frame["topic_tag"]).all()
    assert result.stats["train"] == round(len(frame) * 3000 / 3868)
    agreement = result.topics["agreement_with_tags"]
    assert 0.0 <= agreement["normalized_mutual_info"] <= 1.0
    record = run.stage_record("prompts")
    assert record is not None and record.config["model"] is None and record.usage == {}


def test_bad_source_fails_before_the_run_directory_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversation_id": "c1"}\n')
    run = RunDir.create(tmp_path / "run")
    config = PromptsConfig(source="prism", path=bad, controversy_threshold=0.0)
    with pytest.raises(InputError, match=r"bad\.jsonl: line 1: missing field 'opening_prompt'"):
        run_prompts_stage(run, config, embedder=HashingEmbedder())
    assert not run.file("prompts.parquet").exists() and run.stage_record("prompts") is None


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so the command is addressed by name as in `persona`
        pass

    register(app)
    return app


def test_cli_prism_run_without_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("persona_testbed.prompts.embedding.MiniLMEmbedder", HashingEmbedder)
    out = tmp_path / "r"
    args = ["prompts", "--out", str(out), "--prism", str(PRISM_FIXTURE)]
    result = CliRunner().invoke(_app(), [*args, "--controversy-threshold", "0"])
    assert result.exit_code == 0, result.output
    assert "kept 17 of 24 prompts" in result.output
    assert "no_question_mark 3" in result.output
    assert pl.read_parquet(out / "prompts.parquet")["kept"].sum() == 17


def test_cli_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match="choose exactly one prompt source"):
        prompts_command(out=tmp_path, prism=PRISM_FIXTURE, demo=True)
    with pytest.raises(PersonaError, match="choose exactly one prompt source"):
        prompts_command(out=tmp_path)


def test_a_question_with_no_label_mass_in_one_order_is_undecided_not_kept(
    tmp_path: Path,
) -> None:
    # For one opinion question the judge answers only when "Yes" is listed first (P(yes) 0.9)
    # and puts no mass on A/B in the other order. Before the fix the empty order was averaged
    # in as 0.5, P(yes) = 0.70, and the question was kept as controversial on one order alone.
    def one_order_only(request: ChatRequest) -> tuple[str, dict[str, float]]:
        text = request.messages[-1].content
        if "death penalty" in text and not re.search(r"^A: Yes", text, re.MULTILINE):
            return "Hmm", {"Hmm": 1.0}
        return controversy_script(request)

    client, _ = scripted_client(tmp_path, one_order_only)
    run = RunDir.create(tmp_path / "run")
    result = run_prompts_stage(run, _prism_config(), client=client, embedder=HashingEmbedder())
    frame = pl.read_parquet(result.prompts_path)
    [row] = frame.filter(pl.col("text").str.contains("death penalty")).to_dicts()
    assert row["kept"] is False
    assert row["drop_reason"] == "controversy_undecided"
    assert row["p_controversial"] is None
    assert row["controversy_coverage"] == pytest.approx(0.5)
    assert result.stats["drop_reasons"]["controversy_undecided"] == 1


def test_an_endpoint_without_logprobs_fails_the_controversy_filter_loudly(
    tmp_path: Path,
) -> None:
    # No label mass on any question (no log-probabilities at all): before, every prompt scored
    # 0.5 and the run exited 0 with the filter silently disabled.
    def no_logprobs(request: ChatRequest) -> tuple[str, dict[str, float]]:
        return "Yes", {}

    client, _ = scripted_client(tmp_path, no_logprobs)
    run = RunDir.create(tmp_path / "run")
    with pytest.raises(InputError, match="no usable log-probabilities"):
        run_prompts_stage(run, _prism_config(), client=client, embedder=HashingEmbedder())
    assert not (run.path / "prompts.parquet").exists()


def test_a_model_declared_without_logprobs_stops_the_controversy_filter_before_any_call(
    tmp_path: Path,
) -> None:
    client, backend = scripted_client(tmp_path, lambda request: ("A", {"A": 0.9, "B": 0.1}))
    backend.supports_logprobs = False  # as an anthropic: backend declares
    run = RunDir.create(tmp_path / "run")
    with pytest.raises(InputError, match="needs log-probabilities, which scripted:"):
        run_prompts_stage(run, _prism_config(), client=client, embedder=HashingEmbedder())
    assert backend.calls == []

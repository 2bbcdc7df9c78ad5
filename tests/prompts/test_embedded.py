"""The prompts stage on the real models: the embedded SmolLM2 as controversy classifier and
all-MiniLM-L6-v2 for topics (the issue's acceptance command)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from persona_testbed.cli.prompts import register
from persona_testbed.prompts import DEFAULT_CONTROVERSY_THRESHOLD, MiniLMEmbedder
from tests.prompts.helpers import PRISM_FIXTURE

pytestmark = pytest.mark.embedded


def test_minilm_embeds_offline_and_puts_paraphrases_close() -> None:
    vectors = MiniLMEmbedder().embed(
        [
            "Should the death penalty be abolished?",
            "Is it time to end capital punishment?",
            "What is a good recipe for banana bread?",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_acceptance_prompts_on_the_prism_fixture(tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    register(app)
    out = tmp_path / "r"
    result = CliRunner().invoke(
        app, ["prompts", "--out", str(out), "--prism", str(PRISM_FIXTURE), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out / "prompts.parquet")
    # The rule filters are the model's no matter which: these 7 always go.
    rule_drops = frame.filter(
        pl.col("drop_reason").is_in(["no_question_mark", "too_short", "duplicate"])
    )
    assert len(rule_drops) == 7
    scored = frame.filter(pl.col("p_controversial").is_not_null())
    assert len(scored) == 17
    assert scored["p_controversial"].is_between(0, 1).all()
    # Kept = passed the rules and scored at or above the threshold; the rest say why.
    kept = frame.filter("kept")
    assert set(kept["prompt_id"]) == set(
        scored.filter(pl.col("p_controversial") >= DEFAULT_CONTROVERSY_THRESHOLD)["prompt_id"]
    )
    assert frame.filter(~pl.col("kept"))["drop_reason"].null_count() == 0
    topics = json.loads((out / "prompts/topics.json").read_text())
    assert topics["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["prompts"]["models"] == ["local:smollm2-135m"]

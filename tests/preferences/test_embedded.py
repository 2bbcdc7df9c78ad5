"""End to end on the real embedded model: 2 personas x 3 prompts, with export. The 135M model
writes weak text; this checks that the pipeline runs and records everything, not quality."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import polars as pl
import pytest
from typer.testing import CliRunner

from tests.preferences.cli_app import app
from tests.preferences.helpers import make_run

pytestmark = pytest.mark.embedded
MODEL = "local:smollm2-135m"


def test_two_personas_three_prompts_with_export(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=2, train=4, heldout=2)
    args = ["preferences", "--run", str(run.path), "--per-persona-train", "1"]
    args += ["--per-persona-test-seen", "1", "--per-persona-test-unseen", "1"]
    # `brief` asks for two or three sentences: at a short budget the 135M model's answers are
    # then mostly complete, not cut (a cut answer is a recorded failure, never a pair).
    args += ["--templates", "brief", "--max-tokens", "128", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    frame = pl.read_parquet(run.file("preferences.parquet"))
    assert len(frame) == 6
    assert frame.group_by("persona_id").len()["len"].to_list() == [3, 3]
    for column in ("base_model", "critique_model", "revision_model", "judge_model"):
        assert set(frame[column]) == {MODEL}
    # A failed step (cut by the budget even after the retry, or empty) is recorded, and the pair
    # goes no further; every other pair is complete and judged.
    failed = frame.filter(pl.col("generation_failure").is_not_null())
    usable = frame.filter(pl.col("generation_failure").is_null())
    assert len(usable) >= 3, failed["generation_failure"].to_list()
    for column in ("rejected", "critique", "chosen"):
        assert (usable[column].str.len_chars() > 0).all(), column
    assert usable["judge_p_chosen"].is_between(0, 1).all()
    assert (usable["judge_coverage"] > 0).all()  # the model put mass on "A"/"B"
    assert failed["judge_p_chosen"].is_null().all()

    verification = json.loads(run.file("preferences/verification.json").read_text())
    assert verification["judge_model"] == MODEL
    assert verification["overall"]["pairs"] == len(usable)
    loaded = datasets.load_from_disk(str(run.file("preferences_hf")))
    assert sum(loaded[s].num_rows for s in loaded) == len(usable)
    assert loaded["train"].column_names[:3] == ["pair_id", "persona_id", "persona_text"]
    record = run.stage_record("preferences")
    assert record is not None and record.models == [MODEL]
    assert record.usage[MODEL].calls == record.stats["model_calls"] > 0

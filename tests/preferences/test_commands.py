from __future__ import annotations

from pathlib import Path

import datasets
import polars as pl
import pytest
from typer.testing import CliRunner

from persona_testbed.cli.preferences import preferences as preferences_command
from persona_testbed.errors import PersonaError
from persona_testbed.testing.loopback import LoopbackServer
from tests.preferences.cli_app import app
from tests.preferences.helpers import make_run

SMALL = ["--per-persona-train", "2", "--per-persona-test-seen", "1"]
SMALL += ["--per-persona-test-unseen", "1"]


def test_cli_run_against_an_openai_compatible_server(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=2, train=4, heldout=2)
    with LoopbackServer() as server:
        args = ["preferences", "--run", str(run.path), *SMALL, "--model", "openai:loopback"]
        args += ["--base-url", server.base_url, "--no-progress"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        requests = server.stats()["total"]
    assert "wrote 8 pairs (train 4, test_seen 2, test_unseen 2) for 2 personas" in result.output
    # The server answers "A" with 0.6 in either order: averaged over orders, no preference.
    assert "judge" in result.output and "preferences.parquet" in result.output
    frame = pl.read_parquet(run.file("preferences.parquet"))
    assert frame["judge_p_chosen"].to_list() == pytest.approx([0.5] * 8)
    assert frame["judge_prefers_chosen"].null_count() == 8
    distinct = frame["prompt_id"].n_unique()
    assert requests == distinct + 8 + 8 + 16
    assert datasets.load_from_disk(str(run.file("preferences_hf")))["train"].num_rows == 4


def test_dry_run_prints_the_paper_scale_plan_and_calls_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=2, train=4, heldout=2)
    args = ["preferences", "--run", str(run.path), "--dry-run", "--paper-scale"]
    result = CliRunner().invoke(app, [*args, "--model", "openai:gpt-4o-mini"])
    assert result.exit_code == 0, result.output
    assert "1,586 personas x 200 pairs (100 train / 50 test_seen / 50 test_unseen)" in result.output
    assert "= 317,200 pairs" in result.output
    assert "| judge | openai:gpt-4o-mini | 634,400 |" in result.output
    assert "sharing saves 313,332 of 317,200 base calls" in result.output
    assert not run.file("preferences.parquet").exists()


def test_dry_run_on_the_run_counts_its_own_pairs(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, train=6, heldout=3)
    result = CliRunner().invoke(app, ["preferences", "--run", str(run.path), *SMALL, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "3 personas x 4 pairs" in result.output and "= 12 pairs" in result.output
    assert "| critique | local:smollm2-135m | 12 |" in result.output
    assert "| judge | local:smollm2-135m | 24 |" in result.output


def test_dry_run_without_data_asks_for_sizes(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match="no personas or prompts to plan for"):
        preferences_command(run=tmp_path / "nothing", dry_run=True)
    # With sizes given, no run directory is needed.
    result = CliRunner().invoke(
        app,
        [
            *("preferences", "--run", str(tmp_path / "nothing"), "--dry-run"),
            *("--plan-personas", "10", "--plan-prompts", "100"),
        ],
    )
    assert result.exit_code == 0, result.output
    # 78 train and 22 held-out prompts are too few for 150 + 50 per persona: shrunk to fit.
    assert "10 personas x 100 pairs (52 train / 26 test_seen / 22 test_unseen)" in result.output


def test_bad_template_folder_is_a_one_line_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    with pytest.raises(PersonaError, match=r"--templates .*: neither a bundled set"):
        preferences_command(run=run.path, templates=str(tmp_path / "missing"))

"""`persona align --run DIR` end to end, its one-line input errors, and the align stage of
`persona run` (on, selected, skipped when done)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.cli.app import main
from persona_testbed.pipeline import RunConfig
from persona_testbed.stages import get_stage
from tests.align.helpers import by_religion, planted_run


def test_persona_align_writes_every_output_and_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = planted_run(tmp_path / "run", by_religion, personas=10, train=4, seen=2, unseen=2)
    args = ["align", "--run", str(run.path), "--embedder", "hashing", "--resamples", "200"]
    assert main([*args, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    for name in ("leaderboard.csv", "leaderboard.md", "slices.csv", "accuracy.png"):
        assert f"wrote {run.file('align/' + name)}" in out
    assert f"wrote {run.manifest_path}" in out
    assert "test_seen / persona-conditioned: accuracy" in out and "\ntest_unseen: " in out
    record = run.stage_record("align")
    assert record is not None and record.complete and record.seed == 3
    assert set(record.outputs) >= {"align/leaderboard.csv", "align/slices.csv"}
    board = pl.read_csv(run.file("align/leaderboard.csv"))
    assert {"persona-blind", "persona-conditioned", "group", "role-play-judge"} == set(
        board["method"]
    )
    # Another config without --force is refused, in one line.
    assert main([*args, "--seed", "4"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main([*args, "--seed", "4", "--force", "--methods", "persona-blind"]) == 0


@pytest.mark.parametrize("problem", ["no run", "no preferences", "bad method"])
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    run = planted_run(tmp_path / "run", by_religion, personas=4, train=1, seen=1, unseen=1)
    target = run.path
    extra: list[str] = []
    if problem == "no run":
        target = tmp_path / "missing"
    elif problem == "no preferences":
        run.file("preferences.parquet").unlink()
    else:
        extra = ["--methods", "persona-blind,nope"]
    assert main(["align", "--run", str(target), "--embedder", "hashing", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.count("\n") == 0
    expected = {
        "no run": "no such run directory",
        "no preferences": "preference pairs not found",
        "bad method": "unknown method 'nope'",
    }[problem]
    assert expected in err
    assert not (run.path / "align").exists()


def test_no_train_pairs_gives_chance_predictions_that_say_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small model's preference run may keep no train pair (the demo's 135M model did): the
    stage still writes its outputs, every model at 0.5, and says why, as for too few pairs."""
    run = planted_run(tmp_path / "run", by_religion, personas=4, train=1, seen=1, unseen=1)
    pairs = pl.read_parquet(run.file("preferences.parquet"))
    pairs.filter(pl.col("split") != "train").write_parquet(run.file("preferences.parquet"))
    assert main(["align", "--run", str(run.path), "--embedder", "hashing"]) == 0
    capsys.readouterr()
    board_rows = pl.read_csv(run.file("align/leaderboard.csv"))
    models = board_rows.filter(pl.col("kind") != "reference")
    assert models.height == 6 and (models["accuracy"] == 0.5).all()
    board = run.file("align/leaderboard.md").read_text()
    assert "no usable pairs in the 'train' split" in board


def test_persona_run_runs_the_align_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = planted_run(tmp_path / "run", by_religion, personas=8, train=3, seen=1, unseen=1)
    config = tmp_path / "run.yaml"
    config.write_text("seed: 5\nstages: [align]\nalign:\n  embedder: hashing\n  resamples: 200\n")
    assert main(["run", str(config), "--dry-run", "--out", str(run.path)]) == 0
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(run.path), "--no-progress"]) == 0
    assert "[align] running" in capsys.readouterr().out
    record = run.stage_record("align")
    assert record is not None and record.complete and record.seed == 5  # the run's seed
    assert run.file("align/leaderboard.md").is_file()
    assert main(["run", str(config), "--out", str(run.path), "--no-progress"]) == 0
    assert "[align] already done for this config: skipped" in capsys.readouterr().out


def test_align_is_a_registered_stage_on_by_default_and_off_in_the_paper_config() -> None:
    stage = get_stage("align")
    assert stage.reads(RunConfig().align) == ("preferences.parquet", "personas.parquet")
    assert "align" in RunConfig().stages
    from persona_testbed.pipeline.yaml_source import load_yaml_model

    repo = Path(__file__).resolve().parents[2]
    assert "align" not in load_yaml_model(repo / "configs" / "paper.yaml", RunConfig).stages
    assert "align" in load_yaml_model(repo / "configs" / "demo.yaml", RunConfig).stages

"""`persona run` with the real embedded model: the stage runs, records its model, and a second
run of the same config skips it without a model call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_testbed.cli.app import main


@pytest.mark.embedded
def test_persona_run_with_the_embedded_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "model: local:smollm2-135m\nstages: [personas]\n"
        "personas: {n: 2, rake: us-2022, fill_categories: 1}\n"
    )
    command = ["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(command) == 0
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    usage = stages["personas"]["usage"]["local:smollm2-135m"]
    assert usage["calls"] > 0 and usage["completion_tokens"] > 0
    assert {"personas", "census-compare"} <= set(stages)
    capsys.readouterr()
    assert main(command) == 0
    assert "[personas] already done for this config: skipped" in capsys.readouterr().out

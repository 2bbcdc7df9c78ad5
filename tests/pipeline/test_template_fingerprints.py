"""Prompt templates are in the stage fingerprints: `persona run` re-runs a stage whose prompt
changed and still skips the stages whose prompts did not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from persona_testbed import templates
from persona_testbed.pipeline import RunConfig, fingerprints, run_pipeline
from persona_testbed.testing.loopback import LoopbackServer

EDITED = "Answer with A or B, nothing else."


def _config(base_url: str, cache: Path) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": "openai:loopback",
            "llm": {"base_url": base_url, "cache": str(cache)},
            "stages": ["personas", "prompts"],
            "personas": {"n": 6, "rake": "us-2022", "fill_categories": 1},
            "prompts": {"source": "demo"},
        }
    )


def _edited_copy(tmp_path: Path, package: str) -> Path:
    """A copy of a package's bundled templates with the controversy question reworded."""
    copy = tmp_path / "edited"
    shutil.copytree(templates.bundled_path(package), copy)
    path = copy / "controversy.txt"
    path.write_text(path.read_text("utf-8").replace("Answer with A or B.", EDITED), "utf-8")
    return copy


def test_an_edited_prompt_reruns_its_stage_and_an_unchanged_one_stays_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer() as server:
        config = _config(server.base_url, tmp_path / "cache.sqlite")
        settings = config.llm.settings(show_progress=False)
        out = tmp_path / "run"

        def run() -> list[str]:
            printed: list[str] = []
            run_pipeline(config, out, settings=settings, force=True, announce=printed.append)
            return [line for line in printed if "running" in line or "skipped" in line]

        assert run() == ["[personas] running", "[prompts] running"]
        assert run() == [
            "[personas] already done for this config: skipped",
            "[prompts] already done for this config: skipped",
        ]
        before = fingerprints(config)

        edited = _edited_copy(tmp_path, "persona_testbed.prompts")
        bundled = templates.bundled_path
        monkeypatch.setattr(
            templates,
            "bundled_path",
            lambda package: edited if package == "persona_testbed.prompts" else bundled(package),
        )
        after = fingerprints(config)
        assert after["personas"] == before["personas"]
        assert after["prompts"] != before["prompts"]
        assert run() == ["[personas] already done for this config: skipped", "[prompts] running"]
        # The stage sent the edited prompt, not a cached answer to the old one.
        asked = server.stats()["by_prompt"]
        assert any(prompt.endswith(EDITED) for prompt in asked)
        assert run()[-1] == "[prompts] already done for this config: skipped"

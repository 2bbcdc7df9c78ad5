"""`persona run` over every stage, then `persona report`: the report shows every section, every
figure loads in a real browser, and a re-run skips every finished stage."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persona_testbed.cli.app import main
from persona_testbed.llm import DEFAULT_MODEL, ModelUsage, parse_spec
from persona_testbed.report import write_report
from persona_testbed.run import RunDir
from persona_testbed.testing.loopback import LoopbackServer
from tests.chromium import CHROMIUM, needs_chromium

if CHROMIUM.exists():
    from playwright.sync_api import Browser

SECTIONS = ("population", "prompts", "preferences", "bench", "agreement", "run-facts")
STAGES = ("personas", "prompts", "preferences", "bench", "agreement")


# A judge that prefers the revised answer in either order: an echo server's judge would only
# follow position, which averages to an exact tie over both orders (no label at all).
LOG_08, LOG_02 = math.log(0.8), math.log(0.2)
JUDGE_RULES: list[dict[str, Any]] = [
    {"contains": "Revise the COMPLETION", "reply": "REVISED PREFERENCE: [refined] brief."},
    {"contains": "Answer A: [refined]", "reply": "A", "logprobs": {"A": LOG_08, "B": LOG_02}},
    {"contains": "Which answer", "reply": "B", "logprobs": {"A": LOG_02, "B": LOG_08}},
]


def config_text(base_url: str, cache: Path) -> str:
    """Every stage at toy size against the loopback server (which answers instantly)."""
    return f"""
model: openai:loopback
llm: {{base_url: "{base_url}", concurrency: 4, cache: "{cache}"}}
personas: {{n: 12, rake: us-2022, fill_categories: 1}}
prompts: {{source: demo}}
preferences:
  {{per_persona_train: 1, per_persona_test_seen: 1, per_persona_test_unseen: 1,
   max_personas: 4, max_tokens: 1000}}
bench: {{n: 3, k: 2, max_tokens: 1000, judge_max_tokens: 1000}}
agreement:
  loo: {{n_attributes: 2, pairs: 2, questions: 3, max_tokens: 1000}}
  models: {{annotators: [openai:loopback, openai:loopback-2], personas: 3, items: 2}}
"""


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """(report path, what a second `persona run` of the same config printed)."""
    tmp = tmp_path_factory.mktemp("full-run")
    config = tmp / "run.yaml"
    with LoopbackServer() as server, pytest.MonkeyPatch.context() as patch:
        server.set_rules(JUDGE_RULES)
        patch.setenv("PERSONA_CACHE", str(tmp / "cache.sqlite"))
        config.write_text(config_text(server.base_url, tmp / "cache.sqlite"))
        command = ["run", str(config), "--out", str(tmp / "run"), "--no-progress"]
        assert main(command) == 0
        assert main(["report", "--run", str(tmp / "run")]) == 0
        capture = tmp / "again.log"
        with capture.open("w") as log, patch.context() as inner:
            inner.setattr("sys.stdout", log)
            assert main(command) == 0
    yield tmp / "run" / "report" / "index.html", capture.read_text().splitlines()


def sections_of(html: str) -> dict[str, str]:
    parts = re.split(r"<section ", html)[1:]
    return {re.search(r'data-section="([^"]+)"', part).group(1): part for part in parts}  # type: ignore[union-attr]


def test_report_has_every_section_with_its_model(full_run: tuple[Path, list[str]]) -> None:
    report, _ = full_run
    html = report.read_text("utf-8")
    sections = sections_of(html)
    assert tuple(sections) == SECTIONS
    for key in SECTIONS[:-1]:
        assert 'class="missing"' not in sections[key], key
        assert "openai:loopback" in sections[key], f"{key} does not name its model"
        assert "Tiny model" not in sections[key]  # the loopback model is not the embedded one
    # The figures and tables the issue lists, by section.
    alts = {key: re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)"', part)
            for key, part in sections.items()}  # fmt: skip
    assert alts["population"] == ["census compare", "census joint"]
    assert alts["prompts"] == ["topics"]
    assert {"accuracy by method", "pass at k", "attribute drops", "slices"} <= set(alts["bench"])
    assert {"kappa boxplot", "kappa matrix", "kappa histograms models"} <= set(alts["agreement"])
    assert "leaderboard" in sections["bench"]
    assert "share preferring y_w" in sections["preferences"]
    assert "leave-one-out kappa per attribute" in sections["agreement"]
    assert "dropped prompts by reason" in sections["prompts"]
    facts = sections["run-facts"]
    for stage in ("personas", "prompts", "preferences", "bench", "agreement-loo"):
        assert f"<td>{stage}</td>" in facts
    assert "<td>openai:loopback</td>" in facts and "polars" in facts


def test_second_run_skips_every_finished_stage(full_run: tuple[Path, list[str]]) -> None:
    _, printed = full_run
    skipped = [line for line in printed if "already done for this config: skipped" in line]
    assert [line.split("]")[0].lstrip("[") for line in skipped] == list(STAGES)
    assert "(0 stages run, 5 skipped)" in printed[-1]


@needs_chromium
def test_every_figure_loads_in_chromium(full_run: tuple[Path, list[str]], browser: Browser) -> None:
    report, _ = full_run
    page = browser.new_page()
    page.goto(report.as_uri())
    images = page.locator("img")
    assert images.count() == report.read_text("utf-8").count("<img ") >= 9
    broken = page.evaluate(
        "Array.from(document.images)"
        ".filter(img => !img.complete || img.naturalWidth === 0).map(img => img.alt)"
    )
    assert broken == []
    present = page.evaluate(
        "Array.from(document.querySelectorAll('section[data-section]'))"
        ".filter(s => s.offsetHeight > 0).map(s => s.dataset.section)"
    )
    assert tuple(present) == SECTIONS
    page.close()


def test_embedded_model_sections_carry_the_tiny_model_note(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    embedded = parse_spec(DEFAULT_MODEL).id
    with run.stage("prompts", {"source": "demo"}, seed=0, inputs=[]) as stage:
        stage.add_usage({embedded: ModelUsage(calls=3)})
    # The same weights reached as a GGUF file still make a tiny-model section ...
    with run.stage("agreement-models", {"n": 1}, seed=0, inputs=[]) as stage:
        stage.add_usage({embedded: ModelUsage(calls=1), "gguf:smollm2-135m": ModelUsage(calls=1)})
    # ... but one real model among them does not.
    with run.stage("preferences", {"n": 1}, seed=0, inputs=[]) as stage:
        stage.add_usage({embedded: ModelUsage(calls=1), "openai:gpt-4o": ModelUsage(calls=1)})
    html = write_report(run.path).read_text("utf-8")
    sections = sections_of(html)
    assert "Tiny model" in sections["prompts"] and embedded in sections["prompts"]
    assert "Tiny model" in sections["agreement"]
    assert "Tiny model" not in sections["preferences"]
    assert "No completed bench stage" in sections["bench"]
    assert "Tiny model" not in sections["bench"]

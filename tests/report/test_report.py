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

SECTIONS = ("population", "prompts", "preferences", "bench", "agreement", "align", "run-facts")
STAGES = ("personas", "prompts", "preferences", "bench", "agreement", "align")


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
        if key == "align":
            continue  # the align stage calls no model
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
    assert alts["align"] == ["accuracy"] and "leaderboard" in sections["align"]
    assert "test pluralism?" in sections["align"]
    facts = sections["run-facts"]
    for stage in ("personas", "prompts", "preferences", "bench", "agreement-loo"):
        assert f"<td>{stage}</td>" in facts
    assert "<td>openai:loopback</td>" in facts and "polars" in facts


def test_second_run_skips_every_finished_stage(full_run: tuple[Path, list[str]]) -> None:
    _, printed = full_run
    skipped = [line for line in printed if "already done for this config: skipped" in line]
    assert [line.split("]")[0].lstrip("[") for line in skipped] == list(STAGES)
    assert "(0 stages run, 6 skipped)" in printed[-1]


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


def _json(path: Path) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))]


@needs_chromium
def test_the_summary_screen_shows_the_numbers_of_the_stage_files(
    full_run: tuple[Path, list[str]], browser: Browser
) -> None:
    """Issue 16: the report opens with its summary, each number as its stage file has it."""
    report, _ = full_run
    run = report.parent.parent
    manifest = _json(run / "manifest.json")["stages"]
    verification = _json(run / "preferences" / "verification.json")["overall"]
    bench = _json(run / "bench" / "summary.json")
    loo = _json(run / "agreement" / "loo" / "summary.json")
    models = _json(run / "agreement" / "models" / "summary.json")
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(report.as_uri())

    def shown(name: str) -> str:
        return page.locator(f'[data-value="{name}"]').inner_text()

    # On the first screen, above every section.
    box = page.locator("#summary").bounding_box()
    assert box is not None and box["y"] < 300 and box["y"] + box["height"] <= 900 * 1.25
    first_section = page.locator("section[data-section]").first.bounding_box()
    assert first_section is not None and first_section["y"] > box["y"]

    personas = manifest["personas"]["stats"]
    assert shown("population.personas") == str(personas["personas"])
    fit = manifest["census-compare"]["stats"]
    assert _numbers(shown("population.mean_tvd")) == [fit["raked_mean_tvd"]]
    assert _numbers(shown("population.max_tvd")) == [fit["raked_max_tvd"]["tvd"]]

    assert shown("preferences.pairs") == str(manifest["preferences"]["stats"]["pairs"])
    share = _numbers(shown("preferences.share_prefer_chosen"))
    expected = [verification[k] for k in ("share_prefer_chosen", "ci95_low", "ci95_high")]
    assert share == [round(100 * value, 1) for value in expected]

    def best_first(result: dict[str, Any]) -> tuple[bool, float]:
        value = result["accuracy"]["value"]
        return value is None, -(value or 0.0)

    ranked = sorted(bench["results"], key=best_first)  # results without verdicts last
    rows = page.locator('[data-card="bench"] tbody tr')
    assert rows.count() == len(ranked) >= 4
    for index, result in enumerate(ranked):
        row = rows.nth(index)
        assert row.get_attribute("data-row") == f"bench.{result['model']}.{result['method']}"
        accuracy = result["accuracy"]
        cells = row.locator("td").all_inner_texts()
        bounds = [accuracy[k] for k in ("value", "low", "high") if accuracy[k] is not None]
        assert _numbers(cells[3]) == [round(100 * value, 1) for value in bounds]

    ranking = loo["stats"]["influence_ranking"]
    for annotator, attributes in ranking.items():
        assert shown(f"agreement.loo.{annotator}") == attributes[0]
    for pair in models["agreement"]["pairwise"]:
        name = f"agreement.kappa.{pair['annotator_1']}.{pair['annotator_2']}"
        kappa = [pair["kappa"], pair["kappa_low"], pair["kappa_high"]]
        assert _numbers(shown(name)) == [round(v, 3) for v in kappa if v is not None]

    usage = [u for stage in manifest.values() for u in stage["usage"].values()]
    assert _numbers(shown("cost.total")) == [round(sum(u["cost_usd"] for u in usage), 4)]
    page.close()


@needs_chromium
def test_sections_collapse_and_figures_enlarge(
    full_run: tuple[Path, list[str]], browser: Browser
) -> None:
    report, _ = full_run
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(report.as_uri())
    for key in SECTIONS:
        details = page.locator(f'section[data-section="{key}"] > details')
        assert details.evaluate("d => d.open"), key
    census = page.locator('img[alt="census compare"]')
    width = census.evaluate("img => img.clientWidth")
    natural = census.evaluate("img => img.naturalWidth")
    # The grid is drawn big enough to read, and fitted to the page until clicked.
    assert natural >= 1500 and width < natural
    census.click()
    assert census.evaluate("img => img.clientWidth") == natural
    census.click()
    assert census.evaluate("img => img.clientWidth") == width
    page.locator('section[data-section="population"] > details > summary').click()
    assert not page.locator('section[data-section="population"] > details').evaluate("d => d.open")
    assert not census.is_visible()
    page.close()


def test_tables_put_what_matters_first(full_run: tuple[Path, list[str]]) -> None:
    """The census comparison lists the worst-fitting attributes first (controlled rows last),
    the leaderboard the best accuracy first."""
    report, _ = full_run
    html = report.read_text("utf-8")
    population = sections_of(html)["population"]
    title = "census compare (worst fit first; rows controlled by design last)"
    table = population.split(f"<h3>{title}</h3>")[1].split("</table>")[0]
    header = re.findall(r"<th>([^<]*)</th>", table)
    rows = [re.findall(r"<td>([^<]*)</td>", row) for row in table.split("<tr>")[2:]]
    tvd, controlled = header.index("tvd"), header.index("controlled")
    evidence = [float(row[tvd]) for row in rows if row[controlled] == "False"]
    assert evidence == sorted(evidence, reverse=True) and len(evidence) > 10
    flags = [row[controlled] for row in rows]
    assert flags == sorted(flags) and "True" in flags  # False before True
    bench = sections_of(html)["bench"]
    assert "leaderboard (best accuracy first)" in bench

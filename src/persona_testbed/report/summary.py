"""The report's first screen: the run's headline numbers, one card per stage.

Each number is read from what the stages already write: the manifest (counts, census fit,
usage and cost), `preferences/verification.json` (the judge's share preferring y_w with its
95% CI), `bench/summary.json` (the leaderboard) and `agreement/*/summary.json` (the agreement
headline). A card whose stage did not run says so. Every value carries a `data-value` name in
the page so a test can read it back and compare it with its file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_testbed.estimation.format import format_ci, format_percent
from persona_testbed.llm import ModelUsage
from persona_testbed.run import RunDir

VERIFICATION_JSON = "preferences/verification.json"
BENCH_SUMMARY_JSON = "bench/summary.json"
LOO_SUMMARY_JSON = "agreement/loo/summary.json"
MODELS_SUMMARY_JSON = "agreement/models/summary.json"
# The census reference the fit is judged against: the raked weights when the run raked.
FIT_REFERENCES = ("raked", "pums")


@dataclass
class Line:
    """One labelled number; `name` is its `data-value` in the page."""

    label: str
    value: str
    name: str
    detail: str = ""


@dataclass
class MiniTable:
    columns: list[str]
    rows: list[list[str]]
    names: list[str] = field(default_factory=list)  # data-value of each row, in order


@dataclass
class Card:
    key: str  # the section it summarises (its anchor)
    title: str
    sources: list[str]
    lines: list[Line] = field(default_factory=list)
    table: MiniTable | None = None
    missing: str | None = None


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):  # a damaged file: the card says it is missing
        return None
    return loaded if isinstance(loaded, dict) else None


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _estimate(value: Any, low: Any, high: Any, *, percent: bool) -> str:
    if value is None:
        return "n/a"
    shown = format_percent(value) if percent else _number(value)
    return f"{shown} {format_ci(low, high, percent=percent)}"


def population_card(run: RunDir) -> Card:
    card = Card("population", "Population", ["manifest.json: personas, census-compare"])
    record = run.stage_record("personas")
    if record is None or not record.complete:
        card.missing = "no personas stage"
        return card
    stats = record.stats
    card.lines.append(
        Line(
            "personas",
            f"{stats.get('personas')}",
            "population.personas",
            f"{stats.get('train')} train / {stats.get('test')} test",
        )
    )
    compared = run.stage_record("census-compare")
    fit = compared.stats if compared is not None and compared.complete else {}
    reference = next((r for r in FIT_REFERENCES if f"{r}_mean_tvd" in fit), None)
    if reference is None:
        card.lines.append(Line("fit to the census", "not compared", "population.mean_tvd"))
        return card
    card.lines.append(
        Line(
            f"mean TVD vs census ({reference})",
            _number(fit[f"{reference}_mean_tvd"], 4),
            "population.mean_tvd",
            f"over {fit.get(f'{reference}_attributes')} attributes the design does not control",
        )
    )
    worst = fit.get(f"{reference}_max_tvd") or {}
    if isinstance(worst, dict) and "tvd" in worst:
        card.lines.append(
            Line(
                "worst-fitting attribute",
                _number(worst["tvd"], 4),
                "population.max_tvd",
                str(worst.get("attribute", "")),
            )
        )
    return card


def preferences_card(run: RunDir) -> Card:
    card = Card("preferences", "Preference pairs", [VERIFICATION_JSON, "manifest.json"])
    record = run.stage_record("preferences")
    report = _read_json(run.file(VERIFICATION_JSON))
    if record is None or not record.complete or report is None:
        card.missing = "no preferences stage"
        return card
    card.lines.append(
        Line(
            "pairs",
            f"{record.stats.get('pairs')}",
            "preferences.pairs",
            f"for {record.stats.get('personas')} personas",
        )
    )
    overall = report.get("overall") or {}
    card.lines.append(
        Line(
            "judge prefers y_w",
            _estimate(
                overall.get("share_prefer_chosen"),
                overall.get("ci95_low"),
                overall.get("ci95_high"),
                percent=True,
            ),
            "preferences.share_prefer_chosen",
            f"{overall.get('prefer_chosen')} of {overall.get('judged')} judged pairs "
            f"(95% CI, personas resampled); judge {report.get('judge_model', '')}",
        )
    )
    return card


def bench_card(run: RunDir) -> Card:
    card = Card("bench", "PERSONA Bench leaderboard", [BENCH_SUMMARY_JSON])
    summary = _read_json(run.file(BENCH_SUMMARY_JSON))
    if summary is None:
        card.missing = "no bench stage"
        return card
    results = [r for r in summary.get("results") or [] if isinstance(r, dict)]

    def accuracy(result: dict[str, Any]) -> float:
        value = (result.get("accuracy") or {}).get("value")
        return -1.0 if value is None else float(value)

    ranked = sorted(results, key=accuracy, reverse=True)  # best first; no verdicts last
    rows, names = [], []
    for rank, result in enumerate(ranked, start=1):
        estimate = result.get("accuracy") or {}
        rows.append(
            [
                str(rank),
                str(result.get("model")),
                str(result.get("method")),
                _estimate(
                    estimate.get("value"), estimate.get("low"), estimate.get("high"), percent=True
                ),
                str(estimate.get("trials", "")),
            ]
        )
        names.append(f"bench.{result.get('model')}.{result.get('method')}")
    card.table = MiniTable(["#", "model", "method", "accuracy (95% CI)", "verdicts"], rows, names)
    card.lines.append(
        Line(
            "pairs",
            f"{summary.get('pairs')}",
            "bench.pairs",
            f"judge {summary.get('judge_model', '')}, k={(summary.get('config') or {}).get('k')}",
        )
    )
    return card


def agreement_card(run: RunDir) -> Card:
    card = Card("agreement", "Agreement", [LOO_SUMMARY_JSON, MODELS_SUMMARY_JSON])
    loo = _read_json(run.file(LOO_SUMMARY_JSON))
    models = _read_json(run.file(MODELS_SUMMARY_JSON))
    if loo is None and models is None:
        card.missing = "no agreement stage"
        return card
    if loo is not None:
        ranking = (loo.get("stats") or {}).get("influence_ranking") or {}
        for annotator, attributes in ranking.items():
            if attributes:
                card.lines.append(
                    Line(
                        "most influential attribute",
                        str(attributes[0]),
                        f"agreement.loo.{annotator}",
                        f"lowest PABAK when left out ({annotator}); then "
                        + (", ".join(attributes[1:3]) or "none"),
                    )
                )
    if models is not None:
        agreement = models.get("agreement") or {}
        fleiss = agreement.get("fleiss_kappa")
        if isinstance(fleiss, dict) and fleiss.get("value") is not None:
            card.lines.append(
                Line(
                    "Fleiss' kappa",
                    _estimate(
                        fleiss["value"], fleiss.get("low"), fleiss.get("high"), percent=False
                    ),
                    "agreement.fleiss_kappa",
                    f"{len((models.get('models') or {}).get('annotators') or [])} annotators",
                )
            )
        for row in agreement.get("pairwise") or []:
            if not isinstance(row, dict):
                continue
            pair = f"{row.get('annotator_1')} vs {row.get('annotator_2')}"
            card.lines.append(
                Line(
                    "Cohen's kappa",
                    _estimate(
                        row.get("kappa"), row.get("kappa_low"), row.get("kappa_high"), percent=False
                    ),
                    f"agreement.kappa.{row.get('annotator_1')}.{row.get('annotator_2')}",
                    f"{pair}, {row.get('n_items')} items, observed agreement "
                    f"{_number(row.get('observed_agreement'))}"
                    + ("; kappa undefined: one constant label" if row.get("degenerate") else ""),
                )
            )
    return card


def cost_card(run: RunDir) -> Card:
    card = Card("run-facts", "Models and cost", ["manifest.json: usage of every stage"])
    usage: dict[str, ModelUsage] = run.load_manifest().total_usage()
    total = sum(u.cost_usd for u in usage.values())
    card.lines.append(
        Line("total cost", f"${total:.4f}", "cost.total", f"{len(usage)} models, all stages")
    )
    rows, names = [], []
    for model, used in sorted(usage.items(), key=lambda item: -item[1].cost_usd):
        rows.append(
            [
                model,
                f"{used.calls:,}",
                f"{used.cache_hits:,}",
                f"{used.prompt_tokens + used.completion_tokens:,}",
                f"${used.cost_usd:.4f}",
            ]
        )
        names.append(f"cost.{model}")
    card.table = MiniTable(["model", "calls", "cache hits", "tokens", "cost USD"], rows, names)
    return card


def summary_cards(run: RunDir) -> list[Card]:
    return [
        population_card(run),
        preferences_card(run),
        bench_card(run),
        agreement_card(run),
        cost_card(run),
    ]

"""`persona report`: one self-contained HTML page (images inline) for a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from persona_testbed import __version__
from persona_testbed.contracts import REPORT_HTML
from persona_testbed.llm import ModelUsage
from persona_testbed.report.failures import add_failures_table
from persona_testbed.report.sections import (
    Section,
    agreement_facts,
    align_facts,
    build_section,
    population_facts,
    preferences_facts,
    prompts_facts,
)
from persona_testbed.report.summary import summary_cards
from persona_testbed.run import RunDir, write_text_atomic

REPORT_PATH = REPORT_HTML.path


def report_sections() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(anchor, title, manifest stage-name prefixes) of every registered stage, in run order."""
    from persona_testbed.stages import stages

    return tuple(s.report_section for s in stages() if s.report_section is not None)


# The built-in stages' sections (a stage registered later gets its section too: build_sections
# asks the registry each time).
SECTIONS = report_sections()


@dataclass
class RunFacts:
    models: list[str]
    seeds: str
    usage: list[tuple[str, ModelUsage]]
    timings: list[tuple[str, str, str]]
    versions: list[tuple[str, str]]


def run_facts(run: RunDir) -> RunFacts:
    manifest = run.load_manifest()
    stages = sorted(manifest.stages.values(), key=lambda r: r.started_at)
    models = list(dict.fromkeys(m for r in stages for m in r.models))
    seeds = sorted({r.seed for r in stages if r.seed is not None})
    return RunFacts(
        models=models,
        seeds=", ".join(str(s) for s in seeds) or "none recorded",
        usage=sorted(manifest.total_usage().items()),
        timings=[
            (r.name, f"{r.seconds:.1f}" if r.seconds else "", r.finished_at or "") for r in stages
        ],
        versions=sorted(manifest.versions.items()),
    )


def build_sections(run: RunDir) -> list[Section]:
    sections = [
        build_section(run, key, title, prefixes) for key, title, prefixes in report_sections()
    ]
    extras = {
        "population": population_facts,
        "prompts": prompts_facts,
        "preferences": preferences_facts,
        "agreement": agreement_facts,
        "align": align_facts,
    }
    for section in sections:
        if section.missing is None and section.key in extras:
            extras[section.key](run, section)
        if section.missing is None:
            add_failures_table(run, section)
    return sections


def write_report(run_path: Path) -> Path:
    """Write `<run>/report/index.html`; a section whose stage did not run says so."""
    run = RunDir.open(run_path)
    environment = Environment(
        loader=PackageLoader("persona_testbed.report", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    html = environment.get_template("report.html").render(
        run_name=run.path.name,
        run_path=str(run.path.resolve()),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        version=__version__,
        summary=summary_cards(run),
        sections=build_sections(run),
        facts=run_facts(run),
    )
    target = run.file(REPORT_PATH)
    write_text_atomic(target, html)
    return target

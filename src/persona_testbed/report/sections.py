"""What each report section shows, read from the run directory's artifacts and manifest."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.contracts import (
    AGREEMENT_HUMAN_PAIRWISE,
    AGREEMENT_PAIRWISE,
    AGREEMENT_SUMMARY,
    LOO_ATTRIBUTES,
    PREFERENCES,
    PROMPTS,
    VERIFICATION,
    Table,
)
from persona_testbed.estimation import format_estimate
from persona_testbed.llm import is_embedded_model
from persona_testbed.run import RunDir, StageRecord

# Tables longer than this are shown whole but collapsed (<details>), so the page stays short
# and no row (e.g. one against the raking target) is hidden from a self-contained report.
MAX_TABLE_ROWS = 40


# How a table is ordered in the report, by its file: what matters first (the worst-fitting
# attribute, the best score). (columns, descending per column, what the order is, for its title)
TABLE_ORDER: dict[str, tuple[tuple[str, ...], tuple[bool, ...], str]] = {
    "census_compare.csv": (
        ("controlled", "tvd"),
        (False, True),
        "worst fit first; rows controlled by design last",
    ),
    "census_joint.csv": (("tvd",), (True,), "worst fit first"),
    "bench/leaderboard.csv": (("accuracy",), (True,), "best accuracy first"),
}


@dataclass
class Figure:
    title: str
    data_uri: str


@dataclass
class TableView:
    title: str
    columns: list[str]
    rows: list[list[str]]
    truncated: int = 0  # rows left out (always 0 now: every row is shown)

    @property
    def collapsed(self) -> bool:
        return len(self.rows) > MAX_TABLE_ROWS


@dataclass
class Section:
    key: str
    title: str
    stages: list[str]
    models: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[TableView] = field(default_factory=list)
    missing: str | None = None

    @property
    def embedded_only(self) -> bool:
        """Every model behind this section is a tiny embedded one."""
        return bool(self.models) and all(is_embedded_model(m) for m in self.models)


def image_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def ordered(output: str, frame: pl.DataFrame, title: str) -> tuple[pl.DataFrame, str]:
    """`frame` in the order TABLE_ORDER gives its file, and the title saying so."""
    order = TABLE_ORDER.get(output)
    if order is None or not set(order[0]) <= set(frame.columns):
        return frame, title
    columns, descending, what = order
    sorted_frame = frame.sort(list(columns), descending=list(descending), nulls_last=True)
    return sorted_frame, f"{title} ({what})"


def table_view(title: str, frame: pl.DataFrame) -> TableView:
    return TableView(
        title=title,
        columns=list(frame.columns),
        rows=[[_cell(v) for v in row] for row in frame.iter_rows()],
    )


def _title(output: str) -> str:
    return Path(output).stem.replace("_", " ").replace("-", " ")


def _records(run: RunDir, prefixes: tuple[str, ...]) -> list[StageRecord]:
    stages = run.load_manifest().stages
    return [r for name, r in sorted(stages.items()) if name.startswith(prefixes) and r.complete]


def build_section(run: RunDir, key: str, title: str, prefixes: tuple[str, ...]) -> Section:
    records = _records(run, prefixes)
    section = Section(key=key, title=title, stages=[r.name for r in records])
    if not records:
        section.missing = f"No completed {' / '.join(prefixes)} stage in this run."
        return section
    for record in records:
        section.models.extend(m for m in record.models if m not in section.models)
        for output in record.outputs:
            path = run.file(output)
            if not path.is_file():
                continue
            if output.endswith(".png"):
                section.figures.append(Figure(_title(output), image_uri(path)))
            elif output.endswith(".csv"):
                frame, title = ordered(output, pl.read_csv(path), _title(output))
                section.tables.append(table_view(title, frame))
    return section


def population_facts(run: RunDir, section: Section) -> None:
    record = run.stage_record("personas")
    if record is None:
        return
    stats = record.stats
    rake = stats.get("rake") or {}
    target = rake.get("target", "none") if isinstance(rake, dict) else str(rake)
    source = rake.get("target_source", "") if isinstance(rake, dict) else ""
    section.facts.append(
        (
            "personas",
            f"{stats.get('personas')} ({stats.get('train')} train / {stats.get('test')} test)",
        )
    )
    section.facts.append(("raking target", f"{target} {source}".strip()))
    sampling = stats.get("sampling") or {}
    if isinstance(sampling, dict) and "design" in sampling:
        section.facts.append(("sampling", str(sampling["design"])))
    weights = stats.get("weights") or {}
    if isinstance(weights, dict) and "effective_sample_size_raked" in weights:
        section.facts.append(
            ("effective sample size (raked weights)", _cell(weights["effective_sample_size_raked"]))
        )
    llm = stats.get("llm") or {}
    if isinstance(llm, dict) and "prune_rate" in llm:
        section.facts.append(
            ("LLM prune rate", f"{llm['prune_rate']:.1%} of {llm.get('judged')} judged")
        )
    compared = run.stage_record("census-compare")
    if compared is not None and compared.complete:
        _census_compare_facts(compared.stats, section)


def _census_compare_facts(stats: dict[str, Any], section: Section) -> None:
    """What the census comparison can and cannot show (issue 13: limits, controlled rows)."""
    if stats.get("target_limits"):
        section.facts.append(("raking target limits", str(stats["target_limits"])))
    controlled = stats.get("controlled") or []
    section.facts.append(
        (
            "controlled by design (not evidence of fidelity)",
            ", ".join(controlled) if controlled else "none",
        )
    )
    joints = stats.get("joints")
    if isinstance(joints, list) and joints:
        section.facts.append(
            (
                "two-way tables with TVD above the i.i.d. 95th percentile",
                f"{stats.get('joints_above_iid_p95', 0)} of {len(joints)} (census_joint.csv)",
            )
        )


def prompts_facts(run: RunDir, section: Section) -> None:
    if not PROMPTS.exists(run):
        return
    prompts = PROMPTS.read(run)
    kept = int(prompts["kept"].sum())
    section.facts.append(("prompts read", str(prompts.height)))
    section.facts.append(("kept", str(kept)))
    section.facts.append(("dropped", str(prompts.height - kept)))
    reasons = (
        prompts.filter(~pl.col("kept"))
        .group_by("drop_reason")
        .len()
        .sort("len", descending=True)
        .rename({"drop_reason": "drop reason", "len": "prompts"})
    )
    splits = prompts.filter(pl.col("kept")).group_by("split").len().sort("split")
    section.tables.insert(0, table_view("dropped prompts by reason", reasons))
    section.tables.insert(1, table_view("kept prompts by split", splits.rename({"len": "prompts"})))


def preferences_facts(run: RunDir, section: Section) -> None:
    if PREFERENCES.exists(run):
        pairs = PREFERENCES.read(run)
        counts = pairs.group_by("split").len().sort("split").rename({"len": "pairs"})
        section.tables.insert(0, table_view("pairs per split", counts))
    if VERIFICATION.exists(run):
        report = VERIFICATION.read(run)
        section.facts.append(("judge", str(report.get("judge_model", ""))))
        methods = report.get("choice_methods") or {}
        if methods:
            section.facts.append(
                (
                    "judge choices scored by",
                    ", ".join(f"{method}: {count} pairs" for method, count in methods.items())
                    + (" (constrained: no log-probabilities)" if "constrained" in methods else ""),
                )
            )
        splits = dict(report.get("splits") or {})
        splits["all"] = report.get("overall") or {}
        rows = [
            {"split": name, **{k: v for k, v in entry.items() if not isinstance(v, (dict, list))}}
            for name, entry in splits.items()
            if isinstance(entry, dict) and entry
        ]
        if rows:
            section.tables.insert(
                1, table_view("share preferring y_w (95% CI)", pl.DataFrame(rows))
            )


# The agreement stage's tables live in Parquet (the PNGs are picked up from the manifest).
AGREEMENT_TABLES: tuple[tuple[Table, str], ...] = (
    (
        LOO_ATTRIBUTES,
        "leave-one-out kappa per attribute, with PABAK, observed agreement, dP and AC1 "
        "(ranked by PABAK; lower: more influence)",
    ),
    (AGREEMENT_PAIRWISE, "pairwise Cohen's kappa between annotators"),
    (AGREEMENT_HUMAN_PAIRWISE, "kappa against human labels"),
)


def agreement_facts(run: RunDir, section: Section) -> None:
    for artifact, title in AGREEMENT_TABLES:
        if artifact.exists(run):
            section.tables.append(table_view(title, artifact.read(run)))
    if AGREEMENT_SUMMARY.exists(run):
        report = AGREEMENT_SUMMARY.read(run)
        overall = report.get("agreement") or {}
        level = (report.get("config") or {}).get("level", 0.95)
        for key in ("fleiss_kappa", "krippendorff_alpha"):
            value = overall.get(key)
            if isinstance(value, dict) and value.get("value") is not None:
                shown = format_estimate(value["value"], value.get("low"), value.get("high"))
                if value.get("low") is not None:
                    shown += f" [{level:.0%} CI]"
                section.facts.append((key.replace("_", " "), shown))
        methods = (report.get("stats") or {}).get("choice_methods_by_annotator") or {}
        constrained = {
            spec: m["constrained"] for spec, m in methods.items() if m.get("constrained")
        }
        if constrained:
            section.facts.append(
                (
                    "labels from constrained answers (no log-probabilities)",
                    ", ".join(f"{spec}: {count}" for spec, count in constrained.items()),
                )
            )


def align_facts(run: RunDir, section: Section) -> None:
    """The pluralism diagnostic of each test split first: a leaderboard whose persona-blind
    model wins says the pairs test surface features, not personas."""
    record = run.stage_record("align")
    if record is None:
        return
    stats = record.stats
    diagnostics = stats.get("diagnostics") or {}
    for split, entry in diagnostics.items():
        if isinstance(entry, dict) and entry.get("sentence"):
            section.facts.append((f"does {split} test pluralism?", str(entry["sentence"])))
    if stats.get("embedder"):
        section.facts.append(("embedder", str(stats["embedder"])))
    pairs = stats.get("pairs") or {}
    if isinstance(pairs, dict) and pairs:
        section.facts.append(("pairs", ", ".join(f"{k}: {v}" for k, v in pairs.items())))

"""The `census-compare` stage: compare a run's personas with the census they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.census.compare import (
    NOISE_REPLICATES,
    STRATA_ATTRIBUTES,
    compare,
    controlled_pairs,
    persona_shares,
    to_markdown,
)
from persona_testbed.census.joints import compare_joints, joints_markdown
from persona_testbed.census.stage import STAGE
from persona_testbed.contracts import (
    BEFORE_PRUNING,
    CENSUS_COMPARE_CSV,
    CENSUS_COMPARE_MD,
    CENSUS_COMPARE_PNG,
    CENSUS_JOINT_CSV,
    CENSUS_JOINT_PNG,
    CENSUS_REFERENCE,
    JOINT_REFERENCE,
    PERSONAS,
)
from persona_testbed.errors import InputError
from persona_testbed.llm.progress import status
from persona_testbed.run import RunDir
from persona_testbed.seeding import child_rng

COMPARE_STAGE = "census-compare"
# The stage's files by their contract paths (contracts.artifacts spells them).
TABLE_CSV = CENSUS_COMPARE_CSV.path
TABLE_MD = CENSUS_COMPARE_MD.path
FIGURE_PNG = CENSUS_COMPARE_PNG.path
JOINT_CSV = CENSUS_JOINT_CSV.path
JOINT_PNG = CENSUS_JOINT_PNG.path


@dataclass(frozen=True)
class CompareResult:
    run: RunDir
    table: pl.DataFrame
    stats: dict[str, Any]
    joints: pl.DataFrame | None = None


def _describe_target(stats: dict[str, Any]) -> str:
    rake = stats.get("rake") or {}
    target = rake.get("target", "none")
    if target == "none":
        return "none (personas drawn with the PUMS person weights PWGTP)"
    return f"{target}: {rake.get('target_source', '')} ({rake.get('universe', '')})"


def _target_limits(stats: dict[str, Any]) -> str:
    rake = stats.get("rake") or {}
    note = str(rake.get("target_note") or "")
    total = rake.get("target_published_total")
    population = rake.get("target_universe_population")
    if total and population:
        note += (
            f" Target cells: {population:,.0f} people in the raked universe; all cells sum to "
            f"the published total {total:,.0f} (checked within 0.5%: the groups are disjoint)."
        )
    return note.strip()


def _design(stats: dict[str, Any]) -> tuple[str, str]:
    """(sampling method, reference the personas were drawn from)."""
    sampling = stats.get("sampling") or {}
    rake = stats.get("rake") or {}
    drawn_from = "pums" if rake.get("target", "none") == "none" else "raked"
    return str(sampling.get("method", "pps")), drawn_from


def run_census_compare(run_path: Path, *, force: bool = False) -> CompareResult:
    """Write census_compare.csv/.md/.png into the run directory of a `personas` stage."""
    run = RunDir.open(run_path)
    record = run.stage_record(STAGE)
    if record is None or not record.complete:
        raise InputError(f"{run_path}: no completed '{STAGE}' stage (run `persona personas` first)")
    personas_path, reference_path = PERSONAS.file(run), CENSUS_REFERENCE.file(run)
    personas = PERSONAS.read(run)  # missing, truncated, a column short: one line
    reference = CENSUS_REFERENCE.read(run)
    seed = record.seed or 0
    sampling, drawn_from = _design(record.stats)
    controlled = controlled_pairs(sampling, drawn_from)
    with status(f"comparing {personas.height:,} personas with the census"):
        table = compare(personas, reference, child_rng(seed, "census-compare noise"), controlled)
    inputs = [personas_path, reference_path]
    joints = None
    joint_path, before_path = JOINT_REFERENCE.file(run), BEFORE_PRUNING.file(run)
    before = BEFORE_PRUNING.read(run) if before_path.is_file() else None
    if joint_path.is_file():  # runs made before joint checks existed have no joint reference
        with status("comparing two-way tables with the census"):
            joints = compare_joints(
                personas,
                JOINT_REFERENCE.read(run),
                child_rng(seed, "census-compare joint noise"),
                before,
            )
        inputs += [joint_path, *([before_path] if before is not None else [])]
    target = _describe_target(record.stats)
    limits = _target_limits(record.stats)
    pool = record.stats.get("pool", {})
    header = (
        f"# Census comparison\n\n"
        f"{personas.height} personas from {pool.get('source', 'PUMS')}.\n\n"
        f"Raking target: {target}.\n\n"
        + (f"Target limits: {limits}\n\n" if limits else "")
        + _controlled_text(sampling, drawn_from)
        + "References: `pums` = PWGTP-weighted records of the pool; `raked` = the same records "
        "under the raked weights; `target` = the raking target itself (its universe only). "
        "TVD = total variation distance; chi-square goodness of fit pools categories with "
        "expected count < 5; the i.i.d. noise columns give the TVD that i.i.d. sampling alone "
        f"would give at this N ({NOISE_REPLICATES} simulated draws)."
    )
    markdown = to_markdown(table, header)
    if joints is not None:
        llm = record.stats.get("llm") or {}
        pruning = (
            f"Before pruning = the first draw of {before.height} records, before the LLM "
            f"consistency judge pruned {llm.get('pruned', 0)} of {llm.get('judged', 0)} judged "
            "and replacements were drawn."
            if before is not None
            else "No LLM pruning step in this run (--no-llm): the sample is the draw itself."
        )
        markdown += "\n" + joints_markdown(joints, pruning)
    shares = persona_shares(personas, reference)
    # The model that judged and filled the personas (none in a --no-llm run).
    models = [str(record.config["model"])] if record.config.get("model") else []
    rake_name = (record.stats.get("rake") or {}).get("target", "none")
    title = f"{personas.height} personas vs census (raking target: {rake_name})"
    stats = _summary(table, target, joints)
    if limits:
        stats["target_limits"] = limits
    # Imported here, not at the top: matplotlib loads when a figure is drawn, not on import.
    from persona_testbed.census.plots import plot_comparison, plot_joints

    with run.stage(
        COMPARE_STAGE,
        {"noise_replicates": NOISE_REPLICATES},
        seed=seed,
        inputs=inputs,
        force=force,
    ) as stage:
        CENSUS_COMPARE_CSV.write(stage, table)
        CENSUS_COMPARE_MD.write(stage, lambda tmp: Path(tmp).write_text(markdown, "utf-8"))
        CENSUS_COMPARE_PNG.write(
            stage,
            lambda tmp: plot_comparison(shares, reference, tmp, title, models=models, seed=seed),
        )
        if joints is not None:
            joint_table = joints
            CENSUS_JOINT_CSV.write(stage, joint_table)
            joint_title = f"{personas.height} personas: two-way tables vs the weighted pool"
            CENSUS_JOINT_PNG.write(
                stage,
                lambda tmp: plot_joints(joint_table, tmp, joint_title, models=models, seed=seed),
            )
        stage.record.stats.update(stats)
    return CompareResult(run=run, table=table, stats=stats, joints=joints)


def _controlled_text(sampling: str, drawn_from: str) -> str:
    if sampling != "pps":
        return (
            "Controlled rows: none (i.i.d. sampling does not stratify, so every row is "
            "evidence).\n\n"
        )
    return (
        f"Controlled rows: {', '.join(STRATA_ATTRIBUTES)} against `{drawn_from}` and `target` "
        "are fixed by the design (systematic PPS with implicit strata age bracket, sex, race "
        "group and state; raking margins when raked): their near-zero TVD is built in, not "
        "evidence. Judge fidelity on the other rows and on the joint tables below.\n\n"
    )


def _summary(table: pl.DataFrame, target: str, joints: pl.DataFrame | None) -> dict[str, Any]:
    """Mean and worst TVD per reference over the rows the design does not control."""
    summary: dict[str, Any] = {"rake_target": target}
    summary["controlled"] = sorted(
        f"{a} vs {r}"
        for a, r, c in table.select("attribute", "reference", "controlled").rows()
        if c
    )
    evidence = table.filter(~pl.col("controlled"))
    for (reference,), part in evidence.group_by("reference", maintain_order=True):
        summary[f"{reference}_mean_tvd"] = round(float(part.select(pl.col("tvd").mean()).item()), 4)
        summary[f"{reference}_attributes"] = part.height
        worst = part.sort("tvd", descending=True).row(0, named=True)
        summary[f"{reference}_max_tvd"] = {
            "attribute": worst["attribute"],
            "tvd": round(float(worst["tvd"]), 4),
        }
    if joints is not None:
        summary["joints"] = [
            {
                "table": row["table"],
                "tvd": round(row["tvd"], 4),
                "iid_noise_tvd_mean": round(row["iid_noise_tvd_mean"], 4),
                "iid_noise_tvd_p95": round(row["iid_noise_tvd_p95"], 4),
                "tvd_before_pruning": None
                if row["tvd_before_pruning"] is None
                else round(row["tvd_before_pruning"], 4),
            }
            for row in joints.iter_rows(named=True)
        ]
        summary["joints_above_iid_p95"] = int(joints.get_column("above_iid_p95").sum())
    return summary

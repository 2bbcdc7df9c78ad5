"""The `census-compare` stage: compare a run's personas with the census they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.census.compare import (
    NOISE_REPLICATES,
    compare,
    persona_shares,
    to_markdown,
)
from persona_testbed.census.pipeline import PERSONAS_PARQUET, REFERENCE_PARQUET, STAGE
from persona_testbed.census.plot import plot_comparison
from persona_testbed.errors import InputError
from persona_testbed.run import RunDir
from persona_testbed.seeding import child_rng

COMPARE_STAGE = "census-compare"
TABLE_CSV = "census_compare.csv"
TABLE_MD = "census_compare.md"
FIGURE_PNG = "census_compare.png"


@dataclass(frozen=True)
class CompareResult:
    run: RunDir
    table: pl.DataFrame
    stats: dict[str, Any]


def _describe_target(stats: dict[str, Any]) -> str:
    rake = stats.get("rake") or {}
    target = rake.get("target", "none")
    if target == "none":
        return "none (personas drawn with the PUMS person weights PWGTP)"
    return f"{target}: {rake.get('target_source', '')} ({rake.get('universe', '')})"


def run_census_compare(run_path: Path, *, force: bool = False) -> CompareResult:
    """Write census_compare.csv/.md/.png into the run directory of a `personas` stage."""
    run = RunDir.open(run_path)
    record = run.stage_record(STAGE)
    if record is None or not record.complete:
        raise InputError(f"{run_path}: no completed '{STAGE}' stage (run `persona personas` first)")
    personas_path, reference_path = run.file(PERSONAS_PARQUET), run.file(REFERENCE_PARQUET)
    for path in (personas_path, reference_path):
        if not path.is_file():
            raise InputError(f"{path}: missing (re-run `persona personas`)")
    personas = pl.read_parquet(personas_path)
    reference = pl.read_parquet(reference_path)
    seed = record.seed or 0
    table = compare(personas, reference, child_rng(seed, "census-compare noise"))
    target = _describe_target(record.stats)
    pool = record.stats.get("pool", {})
    header = (
        f"# Census comparison\n\n"
        f"{personas.height} personas from {pool.get('source', 'PUMS')}.\n\n"
        f"Raking target: {target}.\n\n"
        "References: `pums` = PWGTP-weighted records of the pool; `raked` = the same records "
        "under the raked weights; `target` = the raking target itself (its universe only). "
        "TVD = total variation distance; chi-square goodness of fit pools categories with "
        "expected count < 5; the i.i.d. noise columns give the TVD that i.i.d. sampling alone "
        f"would give at this N ({NOISE_REPLICATES} simulated draws)."
    )
    markdown = to_markdown(table, header)
    shares = persona_shares(personas, reference)
    rake_name = (record.stats.get("rake") or {}).get("target", "none")
    title = f"{personas.height} personas vs census (raking target: {rake_name})"
    stats = _summary(table, target)
    with run.stage(
        COMPARE_STAGE,
        {"noise_replicates": NOISE_REPLICATES},
        seed=seed,
        inputs=[personas_path, reference_path],
        force=force,
    ) as stage:
        stage.write_file(TABLE_CSV, table.write_csv)
        stage.write_file(TABLE_MD, lambda tmp: Path(tmp).write_text(markdown, encoding="utf-8"))
        stage.write_file(FIGURE_PNG, lambda tmp: plot_comparison(shares, reference, tmp, title))
        stage.record.stats.update(stats)
    return CompareResult(run=run, table=table, stats=stats)


def _summary(table: pl.DataFrame, target: str) -> dict[str, Any]:
    summary: dict[str, Any] = {"rake_target": target}
    for (reference,), part in table.group_by("reference", maintain_order=True):
        summary[f"{reference}_mean_tvd"] = round(float(part.select(pl.col("tvd").mean()).item()), 4)
        worst = part.sort("tvd", descending=True).row(0, named=True)
        summary[f"{reference}_max_tvd"] = {
            "attribute": worst["attribute"],
            "tvd": round(float(worst["tvd"]), 4),
        }
    return summary

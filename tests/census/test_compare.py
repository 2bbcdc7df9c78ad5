"""Census comparison: TVD, chi-square, i.i.d. noise reference, CSV/Markdown/PNG outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import (
    PersonaConfig,
    Population,
    Sampling,
    compare_joints,
    draw_iid,
    goodness_of_fit,
    joint_reference,
    run_census_compare,
    run_personas,
)
from persona_testbed.census.compare import iid_noise_tvd
from persona_testbed.contracts import CENSUS_ATTRIBUTES
from persona_testbed.errors import InputError
from persona_testbed.report import write_report
from persona_testbed.run import RunDir


def test_goodness_of_fit_tvd_chi_square_and_pooling() -> None:
    shares = np.array([0.5, 0.3, 0.2])
    exact = goodness_of_fit(np.array([500.0, 300.0, 200.0]), shares)
    assert exact.tvd == 0 and exact.p_value == pytest.approx(1.0) and exact.dof == 2
    off = goodness_of_fit(np.array([600.0, 250.0, 150.0]), shares)
    assert off.tvd == pytest.approx(0.1) and off.p_value is not None and off.p_value < 1e-6
    # Categories with expected count < 5 are pooled into one bin (5 categories -> 4 bins) ...
    rare = goodness_of_fit(
        np.array([495.0, 300.0, 203.0, 1.0, 1.0]), np.array([0.495, 0.3, 0.2, 0.003, 0.002])
    )
    assert rare.dof == 3
    # ... and a pool still under 5 joins the smallest other bin (4 categories -> 2 bins).
    tiny = goodness_of_fit(np.array([500.0, 497.0, 2.0, 1.0]), np.array([0.5, 0.497, 0.002, 0.001]))
    assert tiny.dof == 1 and tiny.p_value == pytest.approx(1.0)
    empty_reference = goodness_of_fit(np.array([90.0, 10.0]), np.array([1.0, 0.0]))
    assert empty_reference.tvd == pytest.approx(0.1)


def test_iid_noise_shrinks_with_n() -> None:
    shares = np.array([0.6, 0.3, 0.1])
    small, _ = iid_noise_tvd(shares, 100, np.random.default_rng(0))
    large, p95 = iid_noise_tvd(shares, 10_000, np.random.default_rng(0))
    assert large < small / 5 and p95 > large


def test_census_compare_of_a_raked_run_writes_table_markdown_and_png(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_personas(run_dir, PersonaConfig(n=1500, seed=3, use_llm=False, rake="us-2022"))
    result = run_census_compare(run_dir)
    table = pl.read_csv(run_dir / "census_compare.csv")
    assert table.equals(result.table)
    references = table.group_by("reference").agg(pl.col("attribute")).sort("reference")
    by_reference = dict(references.iter_rows())
    assert sorted(by_reference["pums"]) == sorted(CENSUS_ATTRIBUTES)
    assert sorted(by_reference["raked"]) == sorted(CENSUS_ATTRIBUTES)
    assert sorted(by_reference["target"]) == ["age", "race", "sex"]
    target = table.filter(pl.col("reference") == "target")
    assert (target.get_column("tvd") < 0.05).all()  # raked PPS draws follow the target
    # The corrected target: three disjoint race/ethnicity groups, not six overlapping ones.
    race_target = pl.read_parquet(run_dir / "census_reference.parquet").filter(
        (pl.col("reference") == "target") & (pl.col("attribute") == "race")
    )
    assert set(race_target.get_column("category")) == {
        "White non-Hispanic",
        "Hispanic",
        "Other non-Hispanic",
    }
    raked = table.filter(pl.col("reference") == "raked")
    assert raked.get_column("tvd").max() < 0.1  # type: ignore[operator]
    assert (table.get_column("iid_noise_tvd_mean") > 0).all()
    markdown = (run_dir / "census_compare.md").read_text()
    assert "Raking target: us-2022" in markdown and "| age | pums |" in markdown
    assert "Target limits: The shipped ACS tables identify only White non-Hispanic" in markdown
    assert (run_dir / "census_compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = RunDir.open(run_dir).stage_record("census-compare")
    assert record is not None and record.stats["rake_target"].startswith("us-2022")
    assert "residual group" in record.stats["target_limits"]


def test_strata_rows_are_marked_controlled_and_left_out_of_the_summary(tmp_path: Path) -> None:
    """Age bracket, sex and race are PPS strata and raking margins: their fit against the
    weights drawn from and the target is built in, so those rows are marked and not averaged."""
    run_dir = tmp_path / "run"
    run_personas(run_dir, PersonaConfig(n=800, seed=4, use_llm=False, rake="us-2022"))
    result = run_census_compare(run_dir)
    controlled = result.table.filter(pl.col("controlled"))
    assert sorted(controlled.select("attribute", "reference").rows()) == sorted(
        (a, r) for a in ("age", "race", "sex") for r in ("raked", "target")
    )
    # Against the unraked pool the strata are not controlled (raking moved them).
    pums = result.table.filter(pl.col("reference") == "pums")
    assert not pums.get_column("controlled").any()
    uncontrolled_raked = result.table.filter(
        (pl.col("reference") == "raked") & ~pl.col("controlled")
    )
    assert result.stats["raked_attributes"] == uncontrolled_raked.height == 21
    assert result.stats["raked_mean_tvd"] == pytest.approx(
        uncontrolled_raked.get_column("tvd").mean(), abs=1e-4
    )
    assert "target_mean_tvd" not in result.stats  # every target row is controlled
    assert "| age | raked | controlled |" in (run_dir / "census_compare.md").read_text()
    # i.i.d. sampling has no strata: nothing is controlled.
    iid_dir = tmp_path / "iid"
    run_personas(iid_dir, PersonaConfig(n=300, seed=4, use_llm=False, sampling=Sampling.IID))
    assert not run_census_compare(iid_dir).table.get_column("controlled").any()


def test_joint_tables_against_the_pool_with_iid_reference(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_personas(run_dir, PersonaConfig(n=1500, seed=3, use_llm=False))
    result = run_census_compare(run_dir)
    assert result.joints is not None
    joints = pl.read_csv(run_dir / "census_joint.csv", schema=result.joints.schema)
    assert joints.equals(result.joints)
    assert joints.get_column("table").to_list() == [
        "age x education",
        "sex x occupation category",
        "race x income",
        "age x marital status",
        "education x income",
    ]
    assert (joints.get_column("reference") == "pums").all()
    assert (joints.get_column("n") == 1500).all()
    assert joints.get_column("n_before_pruning").null_count() == joints.height  # no LLM step
    # Whole records drawn by PPS keep the joints: within i.i.d. sampling noise.
    assert (joints.get_column("tvd") <= joints.get_column("iid_noise_tvd_p95")).all()
    assert (joints.get_column("iid_noise_tvd_mean") < joints.get_column("iid_noise_tvd_p95")).all()
    markdown = (run_dir / "census_compare.md").read_text()
    assert "## Joint distributions (two-way tables)" in markdown
    assert "| sex x occupation category | pums |" in markdown
    assert (run_dir / "census_joint.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_joints_detects_a_flattened_joint(population: Population) -> None:
    """A sample whose marginals match but whose sex x occupation joint is shuffled (the failure
    an audit found elsewhere) has a joint TVD far above i.i.d. noise."""
    reference = joint_reference(population.frame, population.base_weights, "pums")
    drawn = draw_iid(population.base_weights, 3000, np.random.default_rng(0))
    sample = population.frame.select(pl.all().gather(pl.Series(drawn, dtype=pl.UInt32)))
    rng = np.random.default_rng(1)
    honest = compare_joints(sample, reference, rng)
    flattened = sample.with_columns(pl.col("sex").shuffle(seed=7))
    broken = compare_joints(flattened, reference, rng)
    by_table = dict(zip(broken.get_column("table"), broken.iter_rows(named=True), strict=True))
    row = by_table["sex x occupation category"]
    assert row["above_iid_p95"] and row["tvd"] > 2 * row["iid_noise_tvd_p95"]
    assert (
        not honest.filter(pl.col("table") == "sex x occupation category")
        .get_column("above_iid_p95")
        .item()
    )


def test_census_compare_without_raking_and_without_personas(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_personas(run_dir, PersonaConfig(n=400, seed=1, use_llm=False))
    result = run_census_compare(run_dir)
    assert set(result.table.get_column("reference").to_list()) == {"pums"}
    assert "Raking target: none" in (run_dir / "census_compare.md").read_text()
    RunDir.create(tmp_path / "empty")
    with pytest.raises(InputError, match="no completed 'personas' stage"):
        run_census_compare(tmp_path / "empty")
    with pytest.raises(InputError, match="not a run directory"):
        run_census_compare(tmp_path / "nothing")


def test_target_comparison_uses_the_shares_actually_raked_to(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = PersonaConfig(n=600, seed=2, use_llm=False, rake="us-2022", min_age=35, max_age=99)
    run_personas(run_dir, config)
    table = run_census_compare(run_dir).table
    age = table.filter((pl.col("reference") == "target") & (pl.col("attribute") == "age"))
    assert age.get_column("categories").item() == 4  # 18-24 and 25-34 are not in the pool
    assert age.get_column("tvd").item() < 0.05


def test_report_shows_target_limits_controlled_rows_and_joints(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_personas(run_dir, PersonaConfig(n=300, seed=2, use_llm=False, rake="us-2022"))
    run_census_compare(run_dir)
    html = write_report(run_dir).read_text("utf-8")
    population = html.split('data-section="population"')[1].split("<section ")[0]
    assert "raking target limits" in population and "residual group" in population
    assert "controlled by design (not evidence of fidelity)" in population
    assert "age vs raked, age vs target" in population
    assert "two-way tables with TVD above the i.i.d. 95th percentile" in population
    assert 'alt="census joint"' in population and "sex x occupation category" in population

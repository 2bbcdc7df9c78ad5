"""Census comparison: TVD, chi-square, i.i.d. noise reference, CSV/Markdown/PNG outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import (
    PersonaConfig,
    goodness_of_fit,
    run_census_compare,
    run_personas,
)
from persona_testbed.census.compare import iid_noise_tvd
from persona_testbed.census.persona import CENSUS_ATTRIBUTES
from persona_testbed.errors import InputError
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
    raked = table.filter(pl.col("reference") == "raked")
    assert raked.get_column("tvd").max() < 0.1  # type: ignore[operator]
    assert (table.get_column("iid_noise_tvd_mean") > 0).all()
    markdown = (run_dir / "census_compare.md").read_text()
    assert "Raking target: us-2022" in markdown and "| age | pums |" in markdown
    assert (run_dir / "census_compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = RunDir.open(run_dir).stage_record("census-compare")
    assert record is not None and record.stats["rake_target"].startswith("us-2022")


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

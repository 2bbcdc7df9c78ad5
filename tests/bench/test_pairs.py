"""Inputs: personas and prompts from a run directory or files, and the sampled pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.bench.pairs import load_personas, load_prompts, resolve_inputs, sample_pairs
from persona_testbed.errors import InputError

from .conftest import write_personas, write_prompts


def test_defaults_take_test_personas_and_kept_heldout_prompts(tmp_path: Path) -> None:
    personas = load_personas(write_personas(tmp_path / "p.parquet", 5, n_train=3))
    prompts = load_prompts(write_prompts(tmp_path / "q.parquet", 4, n_train=2))
    assert personas.height == 5 and set(personas["split"]) == {"test"}
    assert prompts.height == 4 and "dropped" not in prompts["prompt_id"].to_list()
    assert personas["persona_text"][0].startswith("age: 20\nsex: Female")
    assert load_personas(tmp_path / "p.parquet", "all").height == 8
    assert load_prompts(tmp_path / "q.parquet", "train").height == 2


def test_pairs_are_distinct_reproducible_and_carry_attributes(tmp_path: Path) -> None:
    personas = load_personas(write_personas(tmp_path / "p.parquet", 5))
    prompts = load_prompts(write_prompts(tmp_path / "q.parquet", 4))
    first = sample_pairs(personas, prompts, 12, np.random.default_rng(7))
    again = sample_pairs(personas, prompts, 12, np.random.default_rng(7))
    other = sample_pairs(personas, prompts, 12, np.random.default_rng(8))
    assert first.equals(again)
    assert not first.equals(other)
    assert first["pair_id"].n_unique() == 12
    assert {"question", "persona_text", "sex", "political views"} <= set(first.columns)
    row = first.row(0, named=True)
    assert row["pair_id"] == f"{row['persona_id']}|{row['prompt_id']}"
    with pytest.raises(InputError, match=r"--n 21 .* 5 personas x 4 prompts = 20"):
        sample_pairs(personas, prompts, 21, np.random.default_rng(0))


def test_jsonl_files_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        "\n".join(json.dumps({"prompt_id": f"x{i}", "text": f"Why {i}?"}) for i in range(3))
    )
    prompts = load_prompts(path)  # no kept/split columns: every row
    assert prompts["question"].to_list() == ["Why 0?", "Why 1?", "Why 2?"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "text": "Q?"}))
    with pytest.raises(InputError, match=r"bad.jsonl: missing column\(s\) 'prompt_id'"):
        load_prompts(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.jsonl: cannot read"):
        load_prompts(broken)
    with pytest.raises(InputError, match=r"expected a \.parquet or \.jsonl"):
        load_prompts(write_prompts(tmp_path / "q.parquet", 2).rename(tmp_path / "q.csv"))


def test_bad_persona_rows_name_the_persona_and_field(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"persona_id": "p7", "split": "test", "age": "old"}))
    with pytest.raises(InputError, match="persona 'p7': field 'age'"):
        load_personas(path)
    write_personas(tmp_path / "p.parquet", 0, n_train=2)
    with pytest.raises(InputError, match="no personas with split 'test'"):
        load_personas(tmp_path / "p.parquet")
    dup = tmp_path / "dup.parquet"
    pl.concat([pl.read_parquet(tmp_path / "p.parquet")] * 2).write_parquet(dup)
    with pytest.raises(InputError, match="appears more than once"):
        load_personas(dup, "all")


def test_inputs_default_to_the_run_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"personas.parquet: not found \(run the personas stage"):
        resolve_inputs(tmp_path, None, None)
    write_personas(tmp_path / "personas.parquet", 2)
    own = write_prompts(tmp_path / "mine.parquet", 2)
    assert resolve_inputs(tmp_path, None, own) == (tmp_path / "personas.parquet", own)

from __future__ import annotations

import json
from pathlib import Path

import datasets
import polars as pl
import pyarrow.parquet as pq
import pytest

from persona_testbed.errors import ConfigMismatchError, InputError
from persona_testbed.llm import ChatRequest
from persona_testbed.preferences import (
    PreferencesConfig,
    build_dataset_dict,
    run_preferences_stage,
)
from persona_testbed.run import RunDir
from tests.preferences.helpers import REVISED, dpf_script, make_run, scripted_client

CONTRACT = (
    "pair_id", "persona_id", "persona_text", "prompt_id", "prompt", "topic", "split", "chosen",
    "rejected", "critique", "base_model", "critique_model", "revision_model", "judge_model",
    "judge_p_chosen", "judge_prefers_chosen",
)  # fmt: skip
SMALL = {"per_persona_train": 2, "per_persona_test_seen": 1, "per_persona_test_unseen": 1}


def _calls_by_step(calls: list[ChatRequest]) -> dict[str, int]:
    counts = {"base": 0, "critique": 0, "revision": 0, "judge": 0}
    for request in calls:
        user = request.messages[-1].content
        if request.top_logprobs:
            counts["judge"] += 1
        elif user.startswith("Examine"):
            counts["critique"] += 1
        elif user.startswith("Revise"):
            counts["revision"] += 1
        else:
            counts["base"] += 1
    return counts


def test_pairs_follow_the_contract_and_share_base_answers(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, train=6, heldout=3)
    client, backend = scripted_client(tmp_path)
    result = run_preferences_stage(run, PreferencesConfig(**SMALL), client=client)
    frame = pl.read_parquet(result.preferences_path)
    assert frame.columns[: len(CONTRACT)] == list(CONTRACT)
    assert len(frame) == 12 and frame["pair_id"].n_unique() == 12
    assert dict(frame["split"].value_counts().iter_rows()) == {
        "train": 6,
        "test_seen": 3,
        "test_unseen": 3,
    }
    # y_l is one answer per prompt, shared by every persona that got the prompt.
    distinct = frame["prompt_id"].n_unique()
    assert frame.group_by("prompt_id").agg(pl.col("rejected").n_unique())["rejected"].max() == 1
    assert _calls_by_step(backend.calls) == {
        "base": distinct,
        "critique": 12,
        "revision": 12,
        "judge": 24,
    }
    assert frame["rejected"].str.starts_with("base answer #0 to: ").all()
    assert frame["chosen"].str.starts_with(REVISED).all()
    assert frame["critique"].str.contains("too generic").all()
    # The scripted judge is biased to "A" (0.8 vs 0.3) yet prefers y_w: both orders average
    # to (0.8 + 0.7) / 2.
    assert frame["judge_p_chosen"].to_list() == pytest.approx([0.75] * 12)
    assert frame["judge_prefers_chosen"].all()
    assert set(frame["judge_model"]) == {"scripted:dpf"}
    stats = result.stats
    assert stats["steps"]["base"] == {"requests": distinct, "calls": distinct, "cache_hits": 0}
    assert stats["base_requests_saved_by_sharing"] == 12 - distinct
    assert stats["share_prefer_chosen"] == 1.0
    verification = json.loads(run.file("preferences/verification.json").read_text())
    assert verification["splits"]["train"]["prefer_chosen"] == 6
    assert "| train | 6 | 6 | 6 | 100.0% |" in run.file("preferences/verification.md").read_text()
    record = run.stage_record("preferences")
    assert record is not None and record.stats["pairs"] == 12
    assert "preferences_hf/" in record.outputs


def test_export_reloads_with_load_from_disk(tmp_path: Path) -> None:
    import datasets

    run = make_run(tmp_path / "run", personas=2, train=5, heldout=2)
    client, _ = scripted_client(tmp_path)
    result = run_preferences_stage(run, PreferencesConfig(**SMALL), client=client)
    loaded = datasets.load_from_disk(str(result.dataset_path))
    assert set(loaded) == {"train", "test_seen", "test_unseen"}
    assert [loaded[s].num_rows for s in ("train", "test_seen", "test_unseen")] == [4, 2, 2]
    row = loaded["train"][0]
    for column in ("prompt", "chosen", "rejected", "persona_id", "persona_text", "topic"):
        assert isinstance(row[column], str) and row[column]
    frame = pl.read_parquet(result.preferences_path).filter(pl.col("split") == "train")
    assert loaded["train"]["pair_id"] == frame["pair_id"].to_list()
    card = (result.dataset_path / "README.md").read_text()
    assert "| train | 4 |" in card and "scripted:dpf" in card and "Castricato" in card


def test_base_per_pair_makes_one_base_call_per_pair(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, train=3, heldout=1)
    client, backend = scripted_client(tmp_path)
    config = PreferencesConfig(**SMALL, base_per_pair=True)
    result = run_preferences_stage(run, config, client=client)
    frame = pl.read_parquet(result.preferences_path)
    assert _calls_by_step(backend.calls)["base"] == len(frame) == 12
    assert frame["rejected"].n_unique() == 12  # separate draws, not one shared answer
    assert result.stats["base_requests_saved_by_sharing"] == 0
    assert not frame["base_shared"].any()


def test_rerun_repeats_no_call_and_another_config_needs_force(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    client, backend = scripted_client(tmp_path)
    first = run_preferences_stage(run, PreferencesConfig(**SMALL), client=client)
    sent = len(backend.calls)
    second = run_preferences_stage(run, PreferencesConfig(**SMALL), client=client)
    assert len(backend.calls) == sent
    assert second.stats["model_calls"] == 0
    assert second.stats["cache_hits"] == second.stats["model_requests"]
    assert pl.read_parquet(first.preferences_path).equals(pl.read_parquet(second.preferences_path))
    with pytest.raises(ConfigMismatchError, match="templates"):
        run_preferences_stage(run, PreferencesConfig(**SMALL, templates="subtle"), client=client)
    forced = run_preferences_stage(
        run, PreferencesConfig(**SMALL, templates="subtle"), client=client, force=True
    )
    assert forced.stats["templates"] == "subtle"


def test_separate_judge_model_is_recorded(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=1)
    client, _ = scripted_client(tmp_path)
    judge, judge_backend = scripted_client(tmp_path / "j", model_id="scripted:judge")
    result = run_preferences_stage(
        run, PreferencesConfig(**SMALL, judge="scripted:judge"), client=client, judge_client=judge
    )
    frame = pl.read_parquet(result.preferences_path)
    assert set(frame["judge_model"]) == {"scripted:judge"}
    assert set(frame["revision_model"]) == {"scripted:dpf"}
    assert len(judge_backend.calls) == 2 * len(frame)
    record = run.stage_record("preferences")
    assert record is not None and record.models == ["scripted:dpf", "scripted:judge"]


def test_missing_or_bad_inputs_fail_before_anything_is_written(tmp_path: Path) -> None:
    client, backend = scripted_client(tmp_path)
    run = RunDir.create(tmp_path / "empty")
    missing = r"personas.parquet: personas not found \(run `persona personas`"
    with pytest.raises(InputError, match=missing):
        run_preferences_stage(run, PreferencesConfig(), client=client)
    run = make_run(tmp_path / "run")
    pl.DataFrame({"prompt_id": ["x"], "text": ["Why?"]}).write_parquet(run.file("prompts.parquet"))
    with pytest.raises(InputError, match=r"prompts.parquet: missing column\(s\) 'topic'"):
        run_preferences_stage(run, PreferencesConfig(), client=client)
    assert backend.calls == []
    assert not run.file("preferences.parquet").exists()
    assert run.stage_record("preferences") is None


def test_too_few_prompts_shrink_the_sizes(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=2, train=4, heldout=1)
    client, _ = scripted_client(tmp_path)
    result = run_preferences_stage(run, PreferencesConfig(), client=client)
    assert result.stats["per_persona_used"] == {"train": 3, "test_seen": 1, "test_unseen": 1}
    assert result.stats["pairs"] == 10


def test_chunking_changes_nothing_but_memory(tmp_path: Path) -> None:
    whole_run = make_run(tmp_path / "whole", personas=3)
    chunked_run = make_run(tmp_path / "chunked", personas=3)
    client, backend = scripted_client(tmp_path / "a")
    whole = run_preferences_stage(whole_run, PreferencesConfig(**SMALL), client=client)
    client_b, backend_b = scripted_client(tmp_path / "b")
    chunked = run_preferences_stage(
        chunked_run, PreferencesConfig(**SMALL), client=client_b, chunk_pairs=5
    )
    assert pl.read_parquet(chunked.preferences_path).equals(pl.read_parquet(whole.preferences_path))
    assert len(backend_b.calls) == len(backend.calls)
    assert chunked.stats["steps"] == whole.stats["steps"]
    assert chunked.stats == whole.stats and chunked.verification == whole.verification
    # Each chunk is one row group of the file (12 pairs in chunks of 5).
    assert pq.ParquetFile(chunked.preferences_path).num_row_groups == 3
    assert pq.ParquetFile(whole.preferences_path).num_row_groups == 1
    # The export made from the file on disk is the one the whole in-memory frame gives.
    expected = build_dataset_dict(pl.read_parquet(whole.preferences_path))
    for result in (whole, chunked):
        loaded = datasets.load_from_disk(str(result.dataset_path))
        assert list(loaded) == list(expected)
        for split in expected:
            assert loaded[split].features == expected[split].features
            assert loaded[split].to_list() == expected[split].to_list()
            assert loaded[split].split == expected[split].split


def test_a_run_that_fails_midway_leaves_no_complete_looking_output(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3)
    judged = 0
    partial: dict[Path, int] = {}  # the temporary file at the failure, and its size

    def dies_in_the_second_chunk(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
        nonlocal judged
        if request.top_logprobs:
            judged += 1
            if judged > 12:  # the first chunk's 5 pairs are judged (10 calls) and written
                # ... to a temporary file only, which does not look like the output.
                for tmp in run.path.glob(".preferences.parquet.*.tmp"):
                    partial[tmp] = tmp.stat().st_size
                raise RuntimeError("killed")
        return dpf_script(request)

    client, _ = scripted_client(tmp_path, script=dies_in_the_second_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        run_preferences_stage(run, PreferencesConfig(**SMALL), client=client, chunk_pairs=5)
    ((tmp, size),) = partial.items()
    assert size > 0  # the first chunk's row group was in it
    # No preferences.parquet, no half-written temporary file, no export, no stage record.
    left = {p.name for p in run.path.iterdir()} - {".lock", "manifest.json"}
    assert left == {"personas.parquet", "prompts.parquet"}
    assert not tmp.exists()
    assert run.stage_record("preferences") is None

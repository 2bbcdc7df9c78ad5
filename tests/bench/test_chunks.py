"""The bench stage a chunk of pairs at a time: the chunk size changes memory, never an output,
and a run that dies midway leaves no complete-looking file and resumes from the cache."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from persona_testbed.bench import BenchConfig, Method, run_bench_stage
from persona_testbed.bench.stage import LOO_SAMPLES, SAMPLES
from persona_testbed.llm import ChatRequest, LLMClient
from persona_testbed.run import RunDir
from persona_testbed.testing import ScriptedBackend

from .conftest import clients_for, marker_judge, scripted_client
from .test_stage import planted_model

# Every analysis the stage makes: two models (rows of both in one file), leave-one-out rows,
# attribute drops by the LLM judge, a slice filter, verdict errors and generation failures.
FULL = BenchConfig(
    models=("m", "m2"),
    judge="j",
    n=14,
    k=2,
    seed=5,
    loo=("sex", "religion"),
    drops_judge=True,
    slices=("sex=Female & political views=Republican",),
)


def flaky_model(request: ChatRequest) -> str:
    """The planted model, with an empty answer (a generation failure) on question 1."""
    if "number 1:" in request.messages[-1].content and request.sample_index == 0:
        return ""
    return planted_model(request)


def flaky_judge(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
    """The marker judge, with verdicts that do not parse on question 2."""
    text = json.dumps([m.content for m in request.messages])
    if "number 2:" in text and not request.top_logprobs:
        return "I cannot decide."
    return marker_judge(request)


def full_clients(cache: Path) -> dict[str, LLMClient]:
    return {
        "m": scripted_client(flaky_model, "scripted:model", cache),
        "m2": scripted_client(
            lambda r: planted_model(r).replace("tip", "hint"), "scripted:model2", cache
        ),
        "j": scripted_client(flaky_judge, "scripted:judge", cache),
    }


def backend_calls(clients: dict[str, LLMClient]) -> int:
    backends = {id(c.backend): c.backend for c in clients.values()}.values()
    return sum(len(b.calls) for b in backends if isinstance(b, ScriptedBackend))


def stage_record(run: RunDir) -> dict[str, Any]:
    """The bench's manifest record less what differs between any two runs (times, paths)."""
    record = run.stage_record("bench")
    assert record is not None
    kept = record.model_dump(mode="json", exclude={"started_at", "finished_at", "seconds"})
    kept["inputs"] = {Path(path).name: digest for path, digest in kept["inputs"].items()}
    return kept


def without_usage(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "usage"}


def assert_same_outputs(first: RunDir, second: RunDir, *, usage: bool = True) -> None:
    """Every file of the two runs' bench/ alike: Parquet as frames (the row groups differ),
    everything else (CSV, Markdown, JSON, PNG) byte for byte. `usage=False`: but for the
    calls and cache hits (a resumed run found some replies in the cache)."""
    names = sorted(p.relative_to(first.path) for p in (first.path / "bench").iterdir())
    assert names == sorted(p.relative_to(second.path) for p in (second.path / "bench").iterdir())
    for name in names:
        a, b = first.path / name, second.path / name
        if name.suffix == ".parquet":
            assert pl.read_parquet(a).equals(pl.read_parquet(b)), name
        elif name.suffix == ".json" and not usage:
            assert without_usage(json.loads(a.read_text())) == without_usage(
                json.loads(b.read_text())
            )
        else:
            assert a.read_bytes() == b.read_bytes(), name
    if usage:
        assert stage_record(first) == stage_record(second)
    else:
        assert without_usage(stage_record(first)) == without_usage(stage_record(second))


def test_chunk_size_changes_no_output(make_run: Callable[..., RunDir], tmp_path: Path) -> None:
    whole_run = make_run(n_personas=7, n_prompts=4, name="whole")
    chunked_run = make_run(n_personas=7, n_prompts=4, name="chunked")
    whole_clients = full_clients(tmp_path / "whole.sqlite")
    chunked_clients = full_clients(tmp_path / "chunked.sqlite")
    whole = run_bench_stage(whole_run, FULL, clients=whole_clients, chunk_pairs=10_000)
    chunked = run_bench_stage(chunked_run, FULL, clients=chunked_clients, chunk_pairs=3)

    assert_same_outputs(whole_run, chunked_run)
    assert chunked.outputs == whole.outputs
    assert chunked.summary == whole.summary
    assert chunked.leaderboard.equals(whole.leaderboard)
    assert backend_calls(chunked_clients) == backend_calls(whole_clients)
    # The planted failures are in the files and counted alike.
    stats = chunked_run.stage_record("bench")
    assert stats is not None
    assert stats.stats["verdict_errors"] > 0 and stats.stats["generation_failures"] > 0
    # Each chunk of each model went in as its own row group (14 pairs in chunks of 3: 5).
    assert pq.ParquetFile(chunked_run.file(SAMPLES)).num_row_groups == 2 * 5
    assert pq.ParquetFile(whole_run.file(SAMPLES)).num_row_groups == 2
    assert pq.ParquetFile(chunked_run.file(LOO_SAMPLES)).num_row_groups == 2 * 5


def test_chunk_pairs_must_be_positive(make_run: Callable[..., RunDir], tmp_path: Path) -> None:
    run = make_run(n_personas=2, n_prompts=2)
    config = BenchConfig(models=("m",), judge="j", methods=(Method.PERSONA,), n=2)
    with pytest.raises(ValueError, match="chunk_pairs"):
        run_bench_stage(run, config, clients=clients_for(tmp_path, planted_model), chunk_pairs=0)
    assert run.stage_record("bench") is None


def cached_replies(cache: Path) -> int:
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT count(*) FROM responses").fetchone()
    finally:
        db.close()
    return int(count)


def test_a_run_that_dies_midway_leaves_no_output_and_resumes_from_the_cache(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    # 9 pairs in chunks of 3; each pair is 1 persona answer and 1 without 'sex' (leave-one-out).
    config = BenchConfig(models=("m",), judge="j", methods=(Method.PERSONA,), n=9, loo=("sex",))
    run = make_run(n_personas=9, n_prompts=3)
    answered = 0
    dying = True
    partial: dict[str, int] = {}  # the temporary files at the failure, and their sizes

    def dies_in_the_third_chunk(request: ChatRequest) -> str:
        nonlocal answered
        answered += 1
        if dying and answered > 2 * 2 * 3:  # two chunks of 3 pairs x 2 answers are in
            for tmp in (run.path / "bench").glob(".*.tmp"):
                partial[tmp.name.split(".")[1]] = tmp.stat().st_size
            raise RuntimeError("killed")
        return planted_model(request)

    clients = clients_for(tmp_path, dies_in_the_third_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        run_bench_stage(run, config, clients=clients, chunk_pairs=3)
    # The two chunks' rows were on disk, in temporary files only ...
    assert set(partial) == {"samples", "loo_samples"} and all(partial.values())
    # ... which are gone: no output file, no stage record.
    assert not any((run.path / "bench").iterdir())
    assert run.stage_record("bench") is None
    done_before = cached_replies(tmp_path / "cache.sqlite")
    assert done_before >= 2 * (2 * 3 * 2)  # two chunks' answers, verdicts and flags at least

    # The same job uninterrupted, on a fresh cache: the calls and outputs to expect.
    clean_run = make_run(n_personas=9, n_prompts=3, name="clean")
    (tmp_path / "clean-cache").mkdir()
    clean_clients = clients_for(tmp_path / "clean-cache", planted_model)
    run_bench_stage(clean_run, config, clients=clean_clients, chunk_pairs=3)

    dying = False
    resumed_clients = clients_for(tmp_path, dies_in_the_third_chunk)
    run_bench_stage(run, config, clients=resumed_clients, chunk_pairs=3)
    # Nothing answered before the failure was asked again.
    assert backend_calls(resumed_clients) == backend_calls(clean_clients) - done_before
    assert_same_outputs(clean_run, run, usage=False)

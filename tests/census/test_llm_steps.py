"""The LLM steps' logic with a scripted model: pruning, resampling, failures, open-ended fill."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import (
    PersonaConfig,
    Population,
    build_personas,
    run_census_compare,
    run_personas,
)
from persona_testbed.census.curated import load_lists
from persona_testbed.census.llm_steps import (
    FILL_CATEGORIES,
    choose_fill_categories,
    fill_template,
    judge_consistency,
    judge_template,
)
from persona_testbed.errors import PersonaError
from persona_testbed.llm import ChatRequest, ClientSettings, LLMClient
from persona_testbed.run import RunDir
from persona_testbed.testing import ScriptedBackend

JUDGE_SYSTEM = judge_template().fill("system")
FILL_SYSTEM = fill_template().fill("system")


def _age(request: ChatRequest) -> int:
    match = re.search(r"^age: (\d+)$", request.messages[1].content, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def script(request: ChatRequest) -> str:
    """Judge: ages ending in 7 are "inconsistent", ages ending in 3 get an unparseable reply.
    Fill: every requested key gets "<key> by the model"."""
    system = request.messages[0].content
    if system == JUDGE_SYSTEM:
        age = _age(request)
        if age % 10 == 3:
            return "I cannot decide."
        if age % 10 == 7:
            return json.dumps({"consistent": False, "reason": "age ends in seven"})
        return json.dumps({"consistent": True, "reason": "plausible"})
    assert system == FILL_SYSTEM
    keys = re.search(r"with the keys (.*)\.$", request.messages[1].content)
    assert keys is not None
    return json.dumps({key: f"{key} by the model" for key in keys.group(1).split(", ")})


def _client(fn: object = script) -> LLMClient:
    backend = ScriptedBackend(fn)  # type: ignore[arg-type]
    return LLMClient(backend, ClientSettings(cache_path=None, show_progress=False))


def test_judge_prunes_resamples_until_n_and_counts_failures(population: Population) -> None:
    client = _client()
    config = PersonaConfig(n=120, seed=2, use_llm=True)
    build = build_personas(config, population, client)
    llm = build.stats["llm"]
    assert build.personas.height == 120
    assert llm["kept"] == 120 and llm["judged"] == llm["kept"] + llm["pruned"]
    assert llm["pruned"] > 0 and llm["prune_rate"] == round(llm["pruned"] / llm["judged"], 4)
    assert llm["prune_reasons"] == [{"reason": "age ends in seven", "count": llm["pruned"]}]
    ages = build.personas.get_column("age").to_numpy()
    assert not np.any(ages % 10 == 7)
    assert llm["judge_failures"] == int(np.sum(ages % 10 == 3)) > 0  # kept, counted
    assert client.usage[client.model_id].parse_failures >= llm["judge_failures"]
    assert build.pruned is not None and build.pruned.height == llm["pruned"]
    assert set(build.pruned.get_column("reason").to_list()) == {"age ends in seven"}


def test_fill_rewrites_job_and_only_the_chosen_categories(population: Population) -> None:
    build = build_personas(PersonaConfig(n=40, seed=4, use_llm=True), population, _client())
    personas = build.personas
    assert personas.get_column("detailed job description").unique().to_list() == [
        "detailed_job_description by the model"
    ]
    curated = {e.text for entries in load_lists().values() for e in entries}
    for row in personas.iter_rows(named=True):
        written = [
            c
            for c in ("defining quirks", "mannerisms", "personal time", "lifestyle")
            if row[c] == f"{c.replace(' ', '_')} by the model"
        ]
        assert len(written) == 2
        untouched = {"defining quirks", "mannerisms", "personal time", "lifestyle"} - set(written)
        assert all(row[c] in curated for c in untouched)
    assert build.stats["llm"]["fill_failures"] == 0
    assert sum(build.stats["llm"]["fill_categories_chosen"].values()) == 80


def test_failed_fill_keeps_procedural_values(population: Population) -> None:
    def judge_only(request: ChatRequest) -> str:
        if request.messages[0].content == JUDGE_SYSTEM:
            return json.dumps({"consistent": True, "reason": "ok"})
        return "no JSON here"

    build = build_personas(
        PersonaConfig(n=10, seed=1, use_llm=True), population, _client(judge_only)
    )
    assert build.stats["llm"]["fill_failures"] == 10
    procedural = build_personas(PersonaConfig(n=10, seed=1, use_llm=False), population)
    assert build.personas.drop("weight").equals(procedural.personas.drop("weight"))


def test_a_judge_that_rejects_everything_stops_with_a_clear_error(
    population: Population,
) -> None:
    def reject(request: ChatRequest) -> str:
        return json.dumps({"consistent": False, "reason": "no"})

    config = PersonaConfig(n=5, seed=0, use_llm=True, max_rounds=3)
    with pytest.raises(PersonaError, match="only 0 of 5 personas passed the consistency judge"):
        build_personas(config, population, _client(reject))


def test_llm_run_records_usage_and_pruned_profiles(tmp_path: Path) -> None:
    client = _client()
    result = run_personas(tmp_path / "run", PersonaConfig(n=30, seed=5), client=client)
    record = RunDir.open(tmp_path / "run").stage_record("personas")
    assert record is not None
    assert record.models == [client.model_id] and record.usage[client.model_id].calls > 0
    assert record.stats["llm"]["prune_rate"] == result.stats["llm"]["prune_rate"]
    pruned = pl.read_ndjson(tmp_path / "run" / "personas_pruned.jsonl")
    assert pruned.columns == [
        "source_state",
        "source_serialno",
        "source_sporder",
        "reason",
        "profile",
    ]


def test_judge_and_category_choice_helpers() -> None:
    outcomes = judge_consistency(_client(), ["age: 7\nsex: Male", "age: 40\nsex: Male"], seed=0)
    assert [o.keep for o in outcomes] == [False, True]
    chosen = choose_fill_categories(1000, np.random.default_rng(0), 2)
    assert all(len(c) == 2 and len(set(c)) == 2 for c in chosen)
    counts = Counter(c for pair in chosen for c in pair)
    assert set(counts) == set(FILL_CATEGORIES) and min(counts.values()) > 400


def test_census_compare_shows_joints_before_and_after_a_distorting_judge(
    tmp_path: Path,
) -> None:
    """A judge that prunes every married person aged 35+ flattens age x marital status: the
    joint table shows it after pruning, and the first draw before pruning stays within noise."""

    def prune_married(request: ChatRequest) -> str:
        if request.messages[0].content == JUDGE_SYSTEM:
            content = request.messages[1].content
            married = re.search(r"^marital status: Married$", content, re.MULTILINE) is not None
            reject = married and _age(request) >= 35
            return json.dumps({"consistent": not reject, "reason": "married"})
        return script(request)

    run_dir = tmp_path / "run"
    config = PersonaConfig(n=400, seed=6, fill_categories=0)
    run_personas(run_dir, config, client=_client(prune_married))
    before = pl.read_parquet(run_dir / "personas_before_pruning.parquet")
    assert before.height == 400 and "marital status" in before.columns
    joints = run_census_compare(run_dir).joints
    assert joints is not None
    rows = {row["table"]: row for row in joints.iter_rows(named=True)}
    marital = rows["age x marital status"]
    assert marital["n_before_pruning"] == 400
    assert marital["tvd_before_pruning"] <= marital["iid_noise_tvd_p95"]
    assert marital["tvd"] > marital["iid_noise_tvd_p95"] and marital["above_iid_p95"]
    assert marital["tvd"] > marital["tvd_before_pruning"] + 0.2
    markdown = (run_dir / "census_compare.md").read_text()
    assert "Before pruning = the first draw of 400 records" in markdown


def test_fill_text_cut_at_the_length_cap_ends_at_a_sentence_or_word() -> None:
    """Constrained decoding stops at the schema's maxLength, often mid-word (issue 18)."""
    from persona_testbed.census.llm_steps import MAX_FIELD_CHARS, MAX_JOB_CHARS, open_ended_fill

    sentence = "Hums old sea shanties while cooking. "
    quirk = (sentence * 10)[: MAX_FIELD_CHARS - 1] + "x"  # cut inside a word at the cap
    job = ("tends the long rows of apple trees and " * 10)[:MAX_JOB_CHARS]

    def capped(request: ChatRequest) -> str:
        return json.dumps({"detailed_job_description": job, "defining_quirks": quirk})

    (outcome,) = open_ended_fill(
        _client(capped), ["profile"], ["values"], [("defining quirks",)], seed=0
    )
    assert outcome.error is None
    assert outcome.values["defining quirks"].endswith("while cooking.")
    assert len(outcome.values["defining quirks"]) < MAX_FIELD_CHARS
    written_job = outcome.values["detailed job description"]
    assert job.startswith(written_job[:-1]) and written_job.endswith(".")
    assert all(word in job.split() for word in written_job.rstrip(".").split())
    # A short reply is left exactly as written.
    short = {"detailed_job_description": "Baker", "defining_quirks": "Hums."}
    (kept,) = open_ended_fill(
        _client(lambda r: json.dumps(short)), ["p"], ["v"], [("defining quirks",)], seed=0
    )
    assert kept.values == {"detailed job description": "Baker", "defining quirks": "Hums."}

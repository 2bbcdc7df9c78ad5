"""The consistency judge and the open-ended fill with the real embedded model (SmolLM2-135M)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.census import PersonaConfig, build_personas, load_population, run_personas
from persona_testbed.census.llm_steps import FILL_CATEGORIES, JOB, judge_consistency
from persona_testbed.llm import ClientSettings, LLMClient
from persona_testbed.llm.backends.local import LOCAL_RUNTIMES, runtime_installed

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMClient]:
    if not any(runtime_installed(r) for r in LOCAL_RUNTIMES):
        pytest.skip("no local runtime installed")
    cache = tmp_path_factory.mktemp("embedded-census") / "cache.sqlite"
    client = LLMClient.from_spec(
        "local:smollm2-135m", ClientSettings(cache_path=cache, show_progress=False)
    )
    yield client
    client.close()


def test_judge_returns_a_verdict_or_a_recorded_failure(model: LLMClient) -> None:
    profiles = [
        "age: 6\nsex: Female\neducation: Master's degree\nmarital status: Married",
        "age: 45\nsex: Male\neducation: Bachelor's degree\nemployment status: Civilian "
        "employed, at work\noccupation category: Management",
    ]
    outcomes = judge_consistency(model, profiles, seed=0)
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert outcome.reason  # a model reason, or "judge reply not parsed: ..."
        if outcome.consistent is None:
            assert outcome.keep and outcome.reason.startswith("judge reply not parsed")


def test_two_personas_through_judge_and_fill(model: LLMClient, tmp_path: Path) -> None:
    config = PersonaConfig(n=2, seed=0)
    result = run_personas(tmp_path / "run", config, client=model)
    llm = result.stats["llm"]
    assert llm["kept"] == 2 and llm["judged"] == llm["kept"] + llm["pruned"]
    assert sum(llm["fill_categories_chosen"].values()) == 4
    written = pl.read_parquet(result.personas_path)
    assert all(written.get_column(JOB).to_list())
    # Every model answer is cached: a second build gives the same text without new calls.
    calls = model.usage[model.model_id].calls
    again = build_personas(config, load_population(config), model)
    assert model.usage[model.model_id].calls == calls
    columns = [JOB, *FILL_CATEGORIES]
    assert again.personas.select(columns).equals(written.select(columns))

"""`execution: ray`: a wave of uncached requests runs as a Ray Data job in Ray's local mode
against the loopback server; the answers land in the cache and the items replay from it.

Ray starts once for this module (about 10-20 s on two cores) and every job reuses it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from persona_testbed.errors import PersonaError
from persona_testbed.llm import ClientSettings, LLMCallError, LLMClient, Message, ResponseCache
from persona_testbed.llm.batchfiles import PendingRequest
from persona_testbed.llm.client import BudgetExceededError
from persona_testbed.llm.ray_execution import RayExecutor, ray_error_line, worker_settings
from persona_testbed.llm.settings import EndpointSettings, RaySettings
from persona_testbed.testing.loopback import LoopbackServer
from tests.llm.test_batch_files import QUESTIONS, client_for, two_waves

ray = pytest.importorskip("ray", reason="the `ray` extra is part of the `test` extra")
# Ray Data's own (it copies its context, deprecated fields included).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    from persona_testbed.llm.ray_execution import ensure_ray

    started = not ray.is_initialized()
    yield ensure_ray(RaySettings(num_cpus=2))
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def ray_client(server: LoopbackServer, cache: Path, **updates: Any) -> LLMClient:
    client = client_for(server, cache)
    settings = client.settings.model_copy(update={"execution": "ray", **updates})
    return LLMClient.from_spec("openai:loopback", settings)


def test_a_wave_runs_as_a_ray_job_and_replays_from_the_cache(
    tmp_path: Path, local_ray: Any, server: LoopbackServer
) -> None:
    server.reset()
    online = client_for(server, tmp_path / "online.sqlite")
    expected = two_waves(online)
    online_hits = online.usage["openai:loopback"].cache_hits
    online.close()
    server.reset()
    client = ray_client(server, tmp_path / "ray.sqlite")
    results = two_waves(client)
    assert [r.text for r in results] == [r.text for r in expected]
    assert [r.top_logprobs for r in results] == [r.top_logprobs for r in expected]
    stats = server.stats()
    # Each distinct request once (the repeated question is one key), in two jobs.
    assert stats["total"] == 7 and set(stats["by_prompt"].values()) == {1}
    usage = client.usage["openai:loopback"]
    assert usage.calls == 7 and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    # A replayed wave answer is no cache hit: the hits are those of the online run.
    assert usage.cache_hits == online_hits
    assert client.cache is not None and len(client.cache.keys()) == 7
    client.close()


def test_failed_requests_are_retried_in_the_next_wave_then_fail_as_online(
    tmp_path: Path, local_ray: Any, server: LoopbackServer
) -> None:
    server.reset()
    # "pears" fails its first attempt only; "plums" fails every attempt (a 400 is not retried
    # by the client; the executor tries it in two waves, then gives up).
    server.add_faults([{"contains": "pears", "kind": "503", "times": 1}])
    server.add_faults([{"contains": "plums", "kind": "400", "times": 10}])
    client = ray_client(server, tmp_path / "cache.sqlite")
    requests = [client.request([Message(role="user", content=f"about {q}")]) for q in QUESTIONS]

    async def settle(request: Any) -> str:
        try:
            return (await client.acomplete(request)).text
        except LLMCallError as exc:
            return f"failed: {exc}"

    texts = client.run_sync(client.amap(requests, settle))
    assert texts[:2] == ["echo: about apples", "echo: about pears"]
    assert texts[2].startswith("failed: model openai:loopback at ") and "HTTP 400" in texts[2]
    assert server.stats()["by_prompt"] == {"about apples": 1, "about pears": 2, "about plums": 2}
    store = ResponseCache(tmp_path / "cache.sqlite")
    assert len(store.keys()) == 2  # the failure is not cached: a later run asks again
    store.close()
    client.close()


def test_max_cost_sends_what_fits_then_stops_as_online(
    tmp_path: Path, local_ray: Any, server: LoopbackServer
) -> None:
    server.reset()
    settings = ClientSettings(
        cache_path=tmp_path / "cache.sqlite",
        base_url=server.base_url,
        show_progress=False,
        max_retries=0,
        execution="ray",
        max_cost_usd=0.0025,  # gpt-4o's list price: each request below is estimated at ~$0.001
    )
    client = LLMClient.from_spec("openai:gpt-4o", settings)
    requests = [client.request([Message(role="user", content=f"q{i}")]) for i in range(5)]
    requests = [r.model_copy(update={"max_tokens": 100}) for r in requests]
    with pytest.raises(BudgetExceededError, match="max-cost"):
        client.complete_batch(requests)
    assert server.stats()["total"] == 2
    assert client.cache is not None and len(client.cache.keys()) == 2
    assert client.usage["openai:gpt-4o"].calls == 2
    client.close()


def test_each_worker_gets_its_share_of_the_concurrency() -> None:
    settings = ClientSettings(
        concurrency=100,
        execution="ray",
        max_cost_usd=5.0,
        endpoints=(
            EndpointSettings(base_url="http://a/v1", concurrency=30),
            EndpointSettings(base_url="http://b/v1"),
        ),
    )
    worker = worker_settings(settings, 8)
    assert worker.concurrency == 13 and [e.concurrency for e in worker.endpoints] == [4, None]
    assert worker.execution == "online" and worker.cache_path is None
    assert worker.max_cost_usd is None and not worker.show_progress


def test_a_worker_that_cannot_start_stops_the_step_with_one_line(
    tmp_path: Path, local_ray: Any, server: LoopbackServer
) -> None:
    # A fleet server's key variable set for the driver but not on the worker's node: here,
    # the worker's settings name a variable no process has.
    client = ray_client(server, tmp_path / "cache.sqlite")
    missing = EndpointSettings(base_url=server.base_url, api_key_env="PERSONA_TEST_UNSET_KEY")
    executor = RayExecutor(
        "openai:loopback", client.settings.model_copy(update={"endpoints": (missing,)})
    )
    request = client.request([Message(role="user", content="hello")])
    pending = {"k": PendingRequest(request.canonical_json(), {})}
    with pytest.raises(PersonaError) as failed:
        asyncio.run(executor.run_wave(client, pending))
    assert str(failed.value).startswith("the Ray job failed: ")
    assert "PERSONA_TEST_UNSET_KEY (api_key_env) is not set" in str(failed.value)
    assert "\n" not in str(failed.value)
    client.close()


def test_a_failure_of_ray_itself_is_told_by_its_cause() -> None:
    died = (
        "The actor died because of an error raised in its creation task, \x1b[36mray::"
        "MapWorker(MapBatches(RequestCaller)).__init__()\x1b[39m (pid=1, ip=10.0.0.2)\n"
        '  File "x.py", line 5, in __init__\n    raise PersonaError(...)\n'
        "persona_testbed.errors.PersonaError: endpoint http://h/v1: the environment variable "
        "KEY (api_key_env) is not set\n"
    )
    assert ray_error_line(died) == (
        "persona_testbed.errors.PersonaError: endpoint http://h/v1: the environment variable "
        "KEY (api_key_env) is not set"
    )
    wrapped = (
        "ValueError: boom\n\nThe above exception was the direct cause of the following "
        "exception:\n\x1b[36mray::MapWorker.submit()\x1b[39m\n"
        "ray.exceptions.UserCodeException: UDF failed to process a data block.\n"
    )
    assert ray_error_line(wrapped) == "ValueError: boom"
    assert ray_error_line("\x1b[36mGCS lost\x1b[39m\nmore") == "GCS lost"


def test_ray_needs_a_cache_and_a_remote_model(tmp_path: Path) -> None:
    settings = ClientSettings(cache_path=None, execution="ray", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(PersonaError, match="needs the response cache"):
        LLMClient.from_spec("openai:loopback", settings)
    settings = ClientSettings(cache_path=tmp_path / "c.sqlite", execution="ray")
    with pytest.raises(PersonaError, match=r"local:smollm2-135m runs in this process"):
        LLMClient.from_spec("local:smollm2-135m", settings)


def test_without_ray_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    settings = ClientSettings(
        cache_path=tmp_path / "c.sqlite", execution="ray", base_url="http://127.0.0.1:9/v1"
    )
    with pytest.raises(PersonaError, match=r"^--execution ray needs Ray: pip install 'persona"):
        LLMClient.from_spec("openai:loopback", settings)


def test_the_run_file_sets_the_ray_settings(tmp_path: Path) -> None:
    from persona_testbed.pipeline.config import LLMSection

    section = LLMSection.model_validate(
        {"execution": "ray", "ray": {"address": "ray://head:10001", "workers": 16}}
    )
    settings = section.settings()
    assert settings.execution == "ray" and settings.ray.workers == 16
    assert settings.ray.address == "ray://head:10001" and settings.ray.num_cpus == 2
    with pytest.raises(ValueError, match="wrokers"):
        LLMSection.model_validate({"ray": {"wrokers": 3}})


def test_preferences_through_ray_match_the_online_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_ray: Any, server: LoopbackServer
) -> None:
    from persona_testbed.cli.app import main
    from tests.preferences.helpers import make_run

    small = ["--per-persona-train", "2", "--per-persona-test-seen", "1"]
    small += ["--per-persona-test-unseen", "1", "--model", "openai:loopback", "--no-progress"]
    online = make_run(tmp_path / "online", personas=2, train=4, heldout=2)
    through_ray = make_run(tmp_path / "ray", personas=2, train=4, heldout=2)
    base = ["--base-url", server.base_url, *small]
    server.reset()
    online_args = ["preferences", "--run", str(online.path), *base]
    assert main([*online_args, "--cache", str(tmp_path / "online.sqlite")]) == 0
    sent_online = server.stats()["by_prompt"]
    server.reset()
    args = ["preferences", "--run", str(through_ray.path), *base]
    args += ["--cache", str(tmp_path / "ray.sqlite"), "--execution", "ray"]
    assert main(args) == 0, capsys.readouterr().err
    # The same requests as online, each sent once.
    assert server.stats()["by_prompt"] == sent_online
    assert server.stats()["total"] == sum(sent_online.values())
    store = ResponseCache(tmp_path / "ray.sqlite")
    assert len(store.keys()) == server.stats()["total"]  # each distinct request sent once
    store.close()
    columns = ["prompt_id", "chosen", "rejected", "judge_p_chosen"]
    expected = pl.read_parquet(online.file("preferences.parquet")).select(columns)
    assert pl.read_parquet(through_ray.file("preferences.parquet")).select(columns).equals(expected)

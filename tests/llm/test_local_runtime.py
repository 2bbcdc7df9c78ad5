"""Choosing the local runtime, the xllamacpp backend's request/reply mapping, the shared compute
gate, the runtime in usage records, and prefix-ordered dispatch (no model is loaded here)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from persona_testbed.errors import PersonaError
from persona_testbed.llm import ClientSettings, LLMClient, Message, ModelUsage
from persona_testbed.llm.backends import local
from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.backends.llamacpp import LlamaCppBackend
from persona_testbed.llm.backends.xllamacpp import (
    XLlamaCppBackend,
    chat_body,
    first_token_logprobs,
)
from persona_testbed.llm.specs import list_models, make_backend
from persona_testbed.llm.types import ChatRequest
from persona_testbed.testing import ScriptedBackend


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    return path


def installed(monkeypatch: pytest.MonkeyPatch, *runtimes: str) -> None:
    monkeypatch.setattr(local, "runtime_installed", lambda runtime: runtime in runtimes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("auto", None),
        ("xllamacpp", "xllamacpp"),
        ("llama-cpp-python", "llama-cpp-python"),
    ],
)
def test_runtime_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None
) -> None:
    monkeypatch.setenv("PERSONA_LOCAL_RUNTIME", value)
    assert ClientSettings().local_runtime == expected


def test_an_unknown_runtime_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_LOCAL_RUNTIME", "llamacpp")
    with pytest.raises(PersonaError, match=r"PERSONA_LOCAL_RUNTIME must be one of auto, xllamacpp"):
        ClientSettings()


def test_the_chosen_runtime_serves_the_spec(monkeypatch: pytest.MonkeyPatch, gguf: Path) -> None:
    installed(monkeypatch, "xllamacpp", "llama-cpp-python")
    spec = f"gguf:{gguf}"
    chosen = make_backend(spec, ClientSettings(local_runtime="llama-cpp-python"))
    assert isinstance(chosen, LlamaCppBackend)
    assert isinstance(
        make_backend(spec, ClientSettings(local_runtime="xllamacpp")), XLlamaCppBackend
    )
    # Unset: the prebuilt runtime when installed, else the source build.
    assert isinstance(make_backend(spec, ClientSettings(local_runtime=None)), XLlamaCppBackend)
    installed(monkeypatch, "llama-cpp-python")
    assert isinstance(make_backend(spec, ClientSettings(local_runtime=None)), LlamaCppBackend)


def test_a_missing_runtime_names_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, gguf: Path
) -> None:
    installed(monkeypatch, "llama-cpp-python")
    with pytest.raises(PersonaError, match=r"xllamacpp is not installed \(pip install xllamacpp"):
        make_backend(f"gguf:{gguf}", ClientSettings(local_runtime="xllamacpp"))
    installed(monkeypatch, "xllamacpp")
    with pytest.raises(PersonaError, match=r"LOCAL_RUNTIME=llama-cpp-python"):
        make_backend(f"gguf:{gguf}", ClientSettings(local_runtime="llama-cpp-python"))
    installed(monkeypatch)
    with pytest.raises(
        PersonaError, match=r"no local runtime is installed \(pip install xllamacpp"
    ):
        make_backend(f"gguf:{gguf}", ClientSettings(local_runtime=None))


def test_persona_models_says_which_runtime_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, "xllamacpp", "llama-cpp-python")
    infos = {i.spec: i for i in list_models(ClientSettings(local_runtime=None))}
    line = infos["gguf:/path/file.gguf"].detail
    assert line == "runtime xllamacpp (default; installed: xllamacpp, llama-cpp-python)"
    infos = {i.spec: i for i in list_models(ClientSettings(local_runtime="llama-cpp-python"))}
    assert "runtime llama-cpp-python (PERSONA_LOCAL_RUNTIME" in infos["gguf:/path/file.gguf"].detail
    installed(monkeypatch)
    infos = {i.spec: i for i in list_models(ClientSettings(local_runtime=None))}
    assert not infos["gguf:/path/file.gguf"].installed
    assert "runtime missing: pip install xllamacpp" in infos["gguf:/path/file.gguf"].detail


def test_the_runtimes_never_share_cache_keys(gguf: Path) -> None:
    request = ChatRequest(model="gguf:x", messages=(Message(role="user", content="hi"),))
    source = LlamaCppBackend("gguf:x", gguf)
    prebuilt = XLlamaCppBackend("gguf:x", gguf)
    assert source.identity == f"gguf:tiny.gguf:{gguf.stat().st_size}"  # older caches replay
    assert request.cache_key(source.identity) != request.cache_key(prebuilt.identity)
    assert prebuilt.runtime.startswith("xllamacpp")
    assert source.runtime.startswith("llama-cpp-python")


def test_threads_default_to_usable_cores_and_slots_set_concurrency(gguf: Path) -> None:
    assert XLlamaCppBackend("gguf:x", gguf).n_threads == local.usable_cores()
    backend = XLlamaCppBackend("gguf:x", gguf, n_threads=1, parallel=3)
    assert (backend.n_threads, backend.max_concurrency) == (1, 3)


def test_requests_map_to_the_openai_shape_the_server_takes() -> None:
    request = ChatRequest(
        model="local:m",
        messages=(Message(role="system", content="s"), Message(role="user", content="u")),
        temperature=0.5,
        max_tokens=7,
        seed=3,
        sample_index=2,
        stop=("\n",),
        response_format={"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        top_logprobs=20,
    )
    body = chat_body(request)
    assert body == {
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 1.0,
        "seed": request.effective_seed(),
        "stop": ["\n"],
        "response_format": request.response_format,
        "logprobs": True,
        "top_logprobs": 20,
    }
    plain = chat_body(request.model_copy(update={"seed": None, "stop": (), "top_logprobs": None}))
    assert not {"seed", "stop", "logprobs", "top_logprobs"} & set(plain)


def reply(text: str, finish: str, top: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"message": {"role": "assistant", "content": text}}
    choice["finish_reason"] = finish
    if top is not None:
        alternatives = [{"token": t, "logprob": lp} for t, lp in top]
        choice["logprobs"] = {"content": [{"token": top[0][0], "top_logprobs": alternatives}]}
    return {"choices": [choice], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}


def test_replies_keep_finish_reason_usage_and_first_token_alternatives(gguf: Path) -> None:
    backend = XLlamaCppBackend("local:m", gguf)
    result = backend._result(reply("A", "length", [("B", -2.0), ("A", -0.1)]))
    assert (result.text, result.finish_reason, result.prompt_tokens) == ("A", "length", 11)
    assert result.completion_tokens == 2 and result.model == "local:m"
    assert [t.token for t in result.top_logprobs or []] == ["A", "B"]  # most likely first
    assert backend._result(reply("done", "stop")).top_logprobs is None


def test_server_errors_and_bad_replies_are_call_errors_naming_the_model(gguf: Path) -> None:
    backend = XLlamaCppBackend("local:m", gguf)
    error = {"error": {"code": 400, "message": "request (431 tokens) exceeds the context"}}
    with pytest.raises(LLMCallError, match=r"model local:m .*exceeds the context"):
        backend._result(error)
    with pytest.raises(LLMCallError, match="malformed reply"):
        backend._result({"choices": []})
    with pytest.raises(LLMCallError, match="non-finite"):
        backend._result(reply("A", "length", [("A", float("nan"))]))
    with pytest.raises(ValueError, match="non-finite"):
        first_token_logprobs(reply("A", "length", [("A", float("-inf"))])["choices"][0])


def test_the_compute_gate_admits_one_owner_with_any_number_of_its_calls() -> None:
    gate = local.ComputeGate()
    first, second = object(), object()
    gate.enter(first)
    gate.enter(first)  # a second call of the same model: no wait
    entered = threading.Event()

    def other() -> None:
        gate.enter(second)
        entered.set()
        gate.leave()

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(0.05)
    gate.leave()
    assert not entered.is_set()  # one call of the first owner is still inside
    gate.leave()
    thread.join(timeout=5)
    assert entered.is_set()


def test_usage_records_the_runtime_that_served_the_model() -> None:
    backend = ScriptedBackend(lambda request: "ok", model_id="local:m")
    backend.runtime = "xllamacpp 1.0"  # type: ignore[attr-defined]
    client = LLMClient(backend, ClientSettings(cache_path=None, show_progress=False))
    client.complete(client.request([Message(role="user", content="hi")]))
    assert client.usage["local:m"].runtime == "xllamacpp 1.0"
    merged = ModelUsage(runtime="xllamacpp 1.0").add(ModelUsage(runtime="llama-cpp-python 0.3"))
    assert merged.runtime == "llama-cpp-python 0.3; xllamacpp 1.0"
    assert ModelUsage(runtime="a").add(ModelUsage()).runtime == "a"
    remote = LLMClient(ScriptedBackend(lambda request: "ok"), ClientSettings(cache_path=None))
    assert remote.usage["scripted:fake"].runtime is None


def requests_for(client: LLMClient) -> list[ChatRequest]:
    batch = [
        client.request(
            [
                Message(role="system", content=f"persona {p}: a long shared description"),
                Message(role="user", content=f"question {q}"),
            ]
        )
        for p in range(3)
        for q in range(3)
    ]
    random.Random(1).shuffle(batch)
    return batch


@pytest.mark.parametrize("local_backend", [True, False])
def test_local_batches_run_prompts_sharing_a_prefix_back_to_back(local_backend: bool) -> None:
    backend = ScriptedBackend(lambda request: request.messages[1].content, max_concurrency=1)
    if local_backend:
        backend.reuses_prompt_prefix = True  # type: ignore[attr-defined]
    client = LLMClient(backend, ClientSettings(cache_path=None, show_progress=False))
    batch = requests_for(client)
    results = client.complete_batch(batch)
    # Results come back in input order whatever order the calls were sent in.
    assert [r.text for r in results] == [r.messages[1].content for r in batch]
    sent = [(r.messages[0].content, r.messages[1].content) for r in backend.calls]
    if local_backend:
        assert sent == sorted(sent)
    else:
        assert backend.calls == batch

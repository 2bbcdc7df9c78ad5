"""The loopback OpenAI-compatible server, exercised over real HTTP with plain httpx."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from persona_testbed.testing.loopback import LoopbackServer, schema_example

_JSON = "application/json"


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def loop_server(server: LoopbackServer) -> Iterator[LoopbackServer]:
    # One process for the module (startup is the slow part); every test starts from clean state.
    server.reset()
    yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, trust_env=False) as c:
        yield c


def chat(client: httpx.Client, srv: LoopbackServer, content: str, **extra: Any) -> httpx.Response:
    body = {"model": "test-model", "messages": [{"role": "user", "content": content}], **extra}
    return client.post(f"{srv.base_url}/chat/completions", json=body)


def reply_of(response: httpx.Response) -> str:
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


# --------------------------------------------------------------------------- plain completions


def test_a_reply_longer_than_max_tokens_is_cut_and_says_length(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    # Like a real server: stop at the limit and report finish_reason "length", so the client's
    # truncation handling is exercised and usage never exceeds max_tokens.
    response = chat(client, loop_server, "one two three four five six", max_tokens=3)
    data = response.json()
    assert reply_of(response) == "echo: one two"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3
    whole = chat(client, loop_server, "one two", max_tokens=3)
    assert whole.json()["choices"][0]["finish_reason"] == "stop"


def test_completion_shape_and_usage(loop_server: LoopbackServer, client: httpx.Client) -> None:
    body = {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "You are a persona."},
            {"role": "user", "content": "What do you think?"},
        ],
        "temperature": 0.0,
        "max_tokens": 16,
        "seed": 7,
        "stop": ["\n"],
    }
    response = client.post(f"{loop_server.base_url}/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"id", "object", "created", "model", "choices", "usage"}
    assert data["object"] == "chat.completion"
    assert data["model"] == "test-model"
    assert isinstance(data["id"], str) and isinstance(data["created"], int)
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "echo: What do you think?"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    # 4 + 4 words in, "echo: What do you think?" is 5 words out.
    assert data["usage"] == {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}


def test_echo_uses_last_user_message_and_short_path(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    body = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ignored"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ]
    }
    # Also the un-versioned path some clients use.
    response = client.post(f"{loop_server.root_url}/chat/completions", json=body)
    assert response.status_code == 200
    assert reply_of(response) == "echo: second"
    assert response.json()["model"] == "loopback"


def test_models(loop_server: LoopbackServer, client: httpx.Client) -> None:
    response = client.get(f"{loop_server.base_url}/models")
    assert response.json() == {"object": "list", "data": [{"id": "loopback", "object": "model"}]}


def test_rules_first_match_wins_and_replace(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.set_rules(
        [
            {"contains": "pizza", "reply": "I like pizza"},
            {"contains": "pizza", "reply": "never used"},
            {"contains": None, "reply": "catch-all"},
        ]
    )
    assert reply_of(chat(client, loop_server, "pizza or pasta?")) == "I like pizza"
    response = chat(client, loop_server, "anything")
    assert reply_of(response) == "catch-all"
    assert response.json()["usage"]["completion_tokens"] == 1
    loop_server.set_rules([{"contains": "pasta", "reply": "pasta!"}])  # replaces, not appends
    assert reply_of(chat(client, loop_server, "pizza or pasta?")) == "pasta!"
    assert reply_of(chat(client, loop_server, "anything")) == "echo: anything"


def test_logprobs_default_distribution(loop_server: LoopbackServer, client: httpx.Client) -> None:
    response = chat(client, loop_server, "pick", logprobs=True, top_logprobs=5)
    block = response.json()["choices"][0]["logprobs"]
    (first,) = block["content"]
    assert first["token"] == "A" and first["bytes"] is None
    assert first["logprob"] == pytest.approx(math.log(0.6))
    assert [(t["token"], t["bytes"]) for t in first["top_logprobs"]] == [("A", None), ("B", None)]
    assert [t["logprob"] for t in first["top_logprobs"]] == pytest.approx(
        [math.log(0.6), math.log(0.4)]
    )


def test_logprobs_from_rule_sorted_and_truncated(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.set_rules(
        [{"contains": "vote", "reply": "B", "logprobs": {"A": -2.4, "B": -0.1, "C": -5.0}}]
    )
    response = chat(client, loop_server, "please vote", logprobs=True, top_logprobs=2)
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "B"
    (first,) = choice["logprobs"]["content"]
    assert (first["token"], first["logprob"]) == ("B", -0.1)
    assert [(t["token"], t["logprob"]) for t in first["top_logprobs"]] == [("B", -0.1), ("A", -2.4)]
    # logprobs without top_logprobs: the chosen token only.
    response = chat(client, loop_server, "please vote", logprobs=True)
    assert response.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"] == []


class _Inner(BaseModel):
    label: str
    weight: float = Field(ge=0.5)


class _Answer(BaseModel):
    choice: Literal["agree", "disagree"]
    score: int = Field(ge=1, le=5)
    reasons: list[str]
    ok: bool
    inner: _Inner
    note: str | None
    optional: str = "default"


def test_json_schema_reply_validates(loop_server: LoopbackServer, client: httpx.Client) -> None:
    schema = _Answer.model_json_schema()
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    response = chat(client, loop_server, "answer in JSON", response_format=response_format)
    answer = _Answer.model_validate_json(reply_of(response))
    assert answer.choice == "agree" and answer.score == 1 and answer.inner.weight == 0.5
    # A rule still wins over the schema-shaped default.
    loop_server.set_rules([{"contains": None, "reply": '{"scripted": true}'}])
    response = chat(client, loop_server, "answer in JSON", response_format=response_format)
    assert reply_of(response) == '{"scripted": true}'


def test_schema_example_simple_types() -> None:
    schema = {
        "type": "object",
        "required": ["s", "i", "n", "b", "e", "a", "o"],
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "b": {"type": "boolean"},
            "e": {"enum": ["left", "right"]},
            "a": {"type": "array", "items": {"type": "string"}},
            "o": {"type": "object"},
            "skipped": {"type": "string"},
        },
    }
    assert schema_example(schema) == {
        "s": "x",
        "i": 0,
        "n": 0.0,
        "b": True,
        "e": "left",
        "a": [],
        "o": {},
    }


# --------------------------------------------------------------------------- faults


def test_fault_429_with_fractional_retry_after(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.add_faults([{"contains": None, "kind": "429", "times": 1, "retry_after": 0.25}])
    response = chat(client, loop_server, "hello")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0.25"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["message"]
    assert chat(client, loop_server, "hello").status_code == 200  # spent after one use


def test_fault_429_integral_retry_after_and_none(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.add_faults([{"kind": "429", "retry_after": 2}, {"kind": 429}])
    assert chat(client, loop_server, "a").headers["retry-after"] == "2"
    response = chat(client, loop_server, "b")
    assert response.status_code == 429 and "retry-after" not in response.headers


@pytest.mark.parametrize("status", ["500", "503"])
def test_fault_server_errors(
    loop_server: LoopbackServer, client: httpx.Client, status: str
) -> None:
    loop_server.add_faults([{"kind": status, "times": 1, "retry_after": 0.5}])
    response = chat(client, loop_server, "hello")
    assert response.status_code == int(status)
    assert response.json()["error"]["type"] == "server_error"
    assert response.headers["retry-after"] == "0.5"


def test_fault_drop_is_a_connection_error(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.add_faults([{"kind": "drop", "times": 2}])
    for _ in range(2):
        with pytest.raises(httpx.TransportError):  # RemoteProtocolError: no response at all
            chat(client, loop_server, "hello")
    assert chat(client, loop_server, "hello").status_code == 200
    stats = loop_server.stats()
    assert (stats["total"], stats["completed"], stats["faulted"]) == (3, 1, 2)
    # Without the per-prompt counts (a paper-scale run's would be gigabytes), the same counters.
    brief = loop_server.stats(by_prompt=False)
    assert brief == {k: v for k, v in stats.items() if k != "by_prompt"}
    assert loop_server.stderr_tail() == ""  # dropped connections are not logged as errors


def test_fault_malformed_body(loop_server: LoopbackServer, client: httpx.Client) -> None:
    loop_server.add_faults([{"kind": "malformed"}])
    response = chat(client, loop_server, "hello")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert loop_server.stats()["completed"] == 0


def test_fault_slow_delays_then_answers(loop_server: LoopbackServer, client: httpx.Client) -> None:
    loop_server.add_faults([{"kind": "slow", "delay": 0.3}])
    start = time.monotonic()
    response = chat(client, loop_server, "hello")
    assert time.monotonic() - start >= 0.3
    assert response.status_code == 200 and reply_of(response) == "echo: hello"


def test_fault_slow_client_timeout_is_not_completed(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.add_faults([{"kind": "slow", "delay": 0.5}])
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            f"{loop_server.base_url}/chat/completions",
            json={"messages": [{"role": "user", "content": "hello"}]},
            timeout=0.1,
        )
    time.sleep(0.6)  # let the server finish the handler and try to write
    stats = loop_server.stats()
    assert (stats["total"], stats["completed"]) == (1, 0)
    assert loop_server.stderr_tail() == ""


def test_fault_times_and_contains(loop_server: LoopbackServer, client: httpx.Client) -> None:
    loop_server.add_faults(
        [
            {"contains": "alpha", "kind": "500", "times": 2},
            {"contains": None, "kind": "503", "times": 1},
        ]
    )
    assert chat(client, loop_server, "beta").status_code == 503  # alpha rule does not match
    assert chat(client, loop_server, "beta").status_code == 200  # 503 spent
    assert [chat(client, loop_server, "alpha 1").status_code for _ in range(3)] == [500, 500, 200]
    loop_server.add_faults([{"kind": "500", "times": 0}])  # times 0: never fires
    assert chat(client, loop_server, "alpha").status_code == 200
    assert loop_server.stats()["pending_faults"] == 0


def test_faults_append(loop_server: LoopbackServer, client: httpx.Client) -> None:
    loop_server.add_faults([{"kind": "500"}])
    loop_server.add_faults([{"kind": "429"}])
    assert loop_server.stats()["pending_faults"] == 2
    codes = [chat(client, loop_server, "q").status_code for _ in range(3)]
    assert codes == [500, 429, 200]


# --------------------------------------------------------------------------- stats, reset, errors


def test_stats_count_received_and_completed(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.add_faults([{"contains": "p1", "kind": "500", "times": 1}])
    for prompt in ["p1", "p1", "p2", "p3", "p3", "p3"]:
        chat(client, loop_server, prompt)
    stats = loop_server.stats()
    assert stats["total"] == 6
    assert stats["completed"] == 5
    assert stats["faulted"] == 1
    assert stats["by_prompt"] == {"p1": 2, "p2": 1, "p3": 3}


def test_reset_clears_stats_rules_and_faults(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.set_rules([{"contains": None, "reply": "scripted"}])
    loop_server.add_faults([{"kind": "500", "times": 5}])
    assert chat(client, loop_server, "x").status_code == 500
    loop_server.reset()
    assert loop_server.stats() == {
        "total": 0,
        "completed": 0,
        "by_prompt": {},
        "faulted": 0,
        "peak_concurrent": 0,
        "pending_faults": 0,
    }
    response = chat(client, loop_server, "x")
    assert response.status_code == 200 and reply_of(response) == "echo: x"


def test_bad_json_is_400(loop_server: LoopbackServer, client: httpx.Client) -> None:
    url = f"{loop_server.base_url}/chat/completions"
    response = client.post(url, content=b'{"messages": [', headers={"content-type": _JSON})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    response = client.post(url, json={"model": "no messages"})
    assert response.status_code == 400


def test_unknown_path_is_404_json(loop_server: LoopbackServer, client: httpx.Client) -> None:
    for method, path in [("GET", "/v1/nothing"), ("POST", "/v2/chat/completions"), ("GET", "/")]:
        response = client.request(method, f"{loop_server.root_url}{path}")
        assert response.status_code == 404
        assert response.json()["error"]["message"]


def test_invalid_control_bodies_are_rejected(loop_server: LoopbackServer) -> None:
    with pytest.raises(ValueError, match="400"):
        loop_server.add_faults([{"kind": "teapot"}])
    with pytest.raises(ValueError, match="400"):
        loop_server.add_faults([{"kind": "slow"}])  # slow needs a delay
    with pytest.raises(ValueError, match="400"):
        loop_server.set_rules([{"contains": "x"}])  # no reply
    assert loop_server.stats()["pending_faults"] == 0


def test_killed_client_counts_as_received_not_completed(
    loop_server: LoopbackServer, client: httpx.Client
) -> None:
    loop_server.add_faults([{"kind": "slow", "delay": 0.8}])
    code = (
        "import httpx; httpx.post("
        f"{loop_server.base_url + '/chat/completions'!r}, "
        "json={'messages': [{'role': 'user', 'content': 'doomed'}]}, timeout=30, trust_env=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while loop_server.stats()["total"] < 1:
            assert time.monotonic() < deadline, "the child never reached the server"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    time.sleep(1.0)  # past the slow delay: the server has tried to answer by now
    stats = loop_server.stats()
    assert (stats["total"], stats["completed"], stats["by_prompt"]) == (1, 0, {"doomed": 1})
    assert chat(client, loop_server, "after").status_code == 200  # still serving
    assert loop_server.stderr_tail() == ""


# --------------------------------------------------------------------------- process + concurrency


def test_clean_shutdown_on_sigterm() -> None:
    with LoopbackServer(latency=0.0) as srv:
        assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
        assert srv.port > 0
    assert srv.returncode == 0


def test_startup_failure_is_reported() -> None:
    with pytest.raises(RuntimeError, match="exited with status"), LoopbackServer(host="256.0.0.1"):
        pass


async def test_requests_are_served_concurrently() -> None:
    with LoopbackServer(latency=0.1) as srv:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        async with httpx.AsyncClient(limits=limits, timeout=30.0, trust_env=False) as ac:

            async def one(i: int) -> int:
                body = {"messages": [{"role": "user", "content": f"q{i}"}]}
                response = await ac.post(f"{srv.base_url}/chat/completions", json=body)
                return response.status_code

            codes = await asyncio.gather(*(one(i) for i in range(200)))
        stats = srv.stats()
    assert codes == [200] * 200
    # Served concurrently: many requests were inside their 0.1 s latency wait at once (served
    # one by one it would be 1). Counted by the server, not timed.
    assert stats["peak_concurrent"] >= 50
    assert stats["total"] == stats["completed"] == 200
    assert len(stats["by_prompt"]) == 200

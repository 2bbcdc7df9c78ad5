"""The HTTP backend's JSON: orjson on the hot path, the stdlib for what orjson refuses, and the
same parsed reply for the same body whichever reads it."""

from __future__ import annotations

import json
import math

import pytest

from persona_testbed.llm import ChatRequest, Message
from persona_testbed.llm.backends.openai_http import (
    TransientError,
    json_bytes,
    parse_completion,
)


def _request(max_tokens: int = 16) -> ChatRequest:
    return ChatRequest(
        model="m", messages=(Message(role="user", content="q"),), max_tokens=max_tokens
    )


def test_request_bodies_decode_to_what_was_given() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": 'é€😀 "quoted" \\ \n\t\x00\x1f\u2028'}],
        "temperature": 1e-05,
        "max_tokens": 16,
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"minimum": 0.5}}},
    }
    assert json.loads(json_bytes(body)) == body


def test_bodies_orjson_refuses_go_out_as_the_stdlib_wrote_them() -> None:
    lone_surrogate = {"messages": [{"role": "user", "content": "a\ud800b"}]}
    assert json_bytes(lone_surrogate) == json.dumps(lone_surrogate).encode("ascii")
    int_keys = {"response_format": {1: "x"}}
    assert json.loads(json_bytes(int_keys)) == {"response_format": {"1": "x"}}


def _body(logprob: object, *, usage: str = '{"prompt_tokens": 3, "completion_tokens": 1}') -> str:
    return (
        '{"choices": [{"message": {"content": "A"}, "finish_reason": "stop", "logprobs": '
        '{"content": [{"token": "A", "logprob": -0.1, "top_logprobs": ['
        f'{{"token": "A", "logprob": -0.1}}, {{"token": "B", "logprob": {logprob}}}]}}]}}}}], '
        f'"usage": {usage}}}'
    )


def test_a_reply_parses_the_same_from_text_or_bytes() -> None:
    text = _body(-2.5)
    from_text = parse_completion(text, _request(), "m")
    from_bytes = parse_completion(text.encode(), _request(), "m")
    assert from_text == from_bytes
    assert from_text.text == "A" and from_text.prompt_tokens == 3
    assert from_text.top_logprobs is not None
    assert [(a.token, a.logprob) for a in from_text.top_logprobs] == [("A", -0.1), ("B", -2.5)]


def test_nan_in_a_reply_is_named_as_such_not_as_unreadable_json() -> None:
    # orjson refuses the NaN literal; the stdlib reads it, so the plausibility check names it.
    with pytest.raises(TransientError, match=r"logprob of token 'B' is nan"):
        parse_completion(_body("NaN").encode(), _request(), "m")
    assert math.isnan(
        json.loads(_body("NaN"))["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1][
            "logprob"
        ]
    )


def test_a_malformed_body_in_bytes_is_quoted_as_text() -> None:
    with pytest.raises(TransientError, match=r"malformed response body: '<html>oops"):
        parse_completion(b"<html>oops</html>", _request(), "m")

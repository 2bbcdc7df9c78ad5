"""Checked generation: truncated or empty replies are retried once with twice the budget, then
recorded as failures; --retry-failed re-asks exactly the failures whose bad replies are cached."""

from __future__ import annotations

from pathlib import Path

from persona_testbed.llm import ChatRequest, ClientSettings, LLMCallError, LLMClient, Message
from persona_testbed.llm.generation import (
    FailureTally,
    failure_tally,
    generate_checked,
    stage_failures,
)
from persona_testbed.testing import TruncatingBackend


def _request(client: LLMClient, prompt: str, max_tokens: int = 10) -> ChatRequest:
    return client.request([Message(role="user", content=prompt)], max_tokens=max_tokens)


def _client(script, cache: Path, **settings: object) -> tuple[LLMClient, TruncatingBackend]:
    backend = TruncatingBackend(script, model_id="scripted:trunc")
    config = ClientSettings(cache_path=cache, show_progress=False, concurrency=2, **settings)
    return LLMClient(backend, config), backend


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def _script(request: ChatRequest) -> str:
    prompt = request.messages[-1].content
    if prompt == "short":
        return _words(5)
    if prompt == "long":
        return _words(15)  # over 10, within the retry's 20
    if prompt == "endless":
        return _words(100)  # over both budgets
    if prompt == "broken":
        raise LLMCallError("openai:x at http://h/v1: HTTP 500 after 3 attempts")
    return "   "  # empty


def test_truncated_reply_is_retried_with_twice_the_budget(tmp_path: Path) -> None:
    client, backend = _client(_script, tmp_path / "c.sqlite")
    prompts = ["short", "long", "endless", "blank", "broken"]
    out = generate_checked(client, [_request(client, p) for p in prompts])
    short, long, endless, blank, broken = out
    assert short.ok and short.attempts == 1 and short.finish_reason == "stop"
    # Cut at 10 tokens, then complete at 20: usable, and the retry is recorded.
    assert long.ok and long.attempts == 2 and long.max_tokens == 20
    assert long.first_failure == "truncated" and long.text == _words(15)
    assert endless.failure == "truncated" and endless.attempts == 2
    assert endless.finish_reason == "length"
    assert blank.failure == "empty" and blank.attempts == 2
    assert broken.reason == "error" and "HTTP 500" in (broken.failure or "")
    assert broken.attempts == 1  # a failed call is not a budget problem: no larger retry
    budgets = sorted(r.max_tokens for r in backend.calls)
    assert budgets == [10] * 5 + [20] * 3
    assert failure_tally(out) == {
        "outputs": 5,
        "retried": 3,
        "retried_by_reason": {"empty": 1, "truncated": 2},
        "failed": 3,
        "by_reason": {"empty": 1, "error": 1, "truncated": 1},
    }
    # Counted batch by batch (a long stage keeps counts, not replies), the tally is the same.
    assert FailureTally().add(out[:2]).add([None]).add(out[2:]).as_dict() == failure_tally(out)
    # The retry is its own request: a re-run replays both attempts from the cache.
    again, backend_again = _client(_script, tmp_path / "c.sqlite")
    replay = generate_checked(again, [_request(again, p) for p in prompts[:4]])
    assert [o.failure for o in replay] == [o.failure for o in out[:4]]
    assert backend_again.calls == []


def test_refresh_failed_reasks_only_the_rows_whose_bad_replies_are_cached(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "c.sqlite"
    fixed: set[str] = set()

    def flaky(request: ChatRequest) -> str:
        prompt = request.messages[-1].content
        if prompt.startswith("bad") and prompt not in fixed:
            return ""  # the model's first replies to these come back empty
        return f"answer to {prompt}"

    prompts = ["good 1", "bad 1", "good 2", "bad 2", "good 3"]
    client, backend = _client(flaky, cache)
    first = generate_checked(client, [_request(client, p) for p in prompts])
    assert [o.ok for o in first] == [True, False, True, False, True]
    assert len(backend.calls) == 7  # 5 + one larger retry per empty reply

    fixed.update({"bad 1", "bad 2"})
    # A plain re-run replays the cached empty replies: nothing is asked, nothing changes.
    plain, plain_backend = _client(flaky, cache)
    assert [o.ok for o in generate_checked(plain, [_request(plain, p) for p in prompts])] == [
        True,
        False,
        True,
        False,
        True,
    ]
    assert plain_backend.calls == []
    # --retry-failed: exactly the two failed rows are asked again, with the cache bypassed.
    retry, retry_backend = _client(flaky, cache, refresh_failed=True)
    fresh = generate_checked(retry, [_request(retry, p) for p in prompts])
    assert all(o.ok for o in fresh)
    assert sorted(r.messages[-1].content for r in retry_backend.calls) == ["bad 1", "bad 2"]
    assert {r.max_tokens for r in retry_backend.calls} == {10}
    # The fresh replies replaced the bad ones in the cache: a plain re-run is now complete.
    after, after_backend = _client(flaky, cache)
    assert all(o.ok for o in generate_checked(after, [_request(after, p) for p in prompts]))
    assert after_backend.calls == []


def test_stage_failures_counts_generation_failures_and_verdict_errors() -> None:
    stats = {
        "generation": {"answer": {"failed": 2}, "summary": {"failed": 1}},
        "verdict_errors": 3,
    }
    assert stage_failures(stats) == 6
    assert stage_failures({"pairs": 4}) == 0

"""Checked free-text generation: truncated or empty replies are retried once with a larger
budget, and what is still bad is a recorded generation failure, never a usable output.

A reply cut by the token limit (`finish_reason == "length"`) is not an answer: judging it, or
training on it against a complete one, measures the limit rather than the model. The retry is a
different request (twice the `max_tokens`), so it has its own cache key and a re-run replays it.

With `ClientSettings.refresh_failed` (`persona run --retry-failed`) a row that fails only because
its bad replies came from the cache is asked again with the cache bypassed for exactly those
requests; every good cached reply is reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.client import LLMClient, request_prefix
from persona_testbed.llm.types import ChatRequest, ChatResult

# The retry's token budget, as a multiple of the first request's.
RETRY_TOKEN_FACTOR = 2

TRUNCATED = "truncated"
EMPTY = "empty"
ERROR = "error"

# A step-specific problem of a reply that is neither truncated nor empty (e.g. a chain of
# thought without its "Answer:" line); None when the reply is usable.
ReplyCheck = Callable[[ChatResult], str | None]


def reply_problem(result: ChatResult, check: ReplyCheck | None = None) -> str | None:
    """Why a reply is not a usable output (None: it is)."""
    if result.finish_reason == "length":
        return TRUNCATED
    if not result.text.strip():
        return EMPTY
    return check(result) if check is not None else None


@dataclass(frozen=True)
class Generation:
    """The outcome of one generation row: its last reply, how many requests it took, and why it
    failed (None when it did not)."""

    result: ChatResult | None
    attempts: int
    failure: str | None
    max_tokens: int
    first_failure: str | None = None  # why the first reply was retried (None: it was not)

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def text(self) -> str:
        return self.result.text if self.result is not None else ""

    @property
    def finish_reason(self) -> str | None:
        return self.result.finish_reason if self.result is not None else None

    @property
    def reason(self) -> str | None:
        """The failure's kind without its detail ("error", "truncated", "empty", ...)."""
        return None if self.failure is None else self.failure.split(":", 1)[0]


Settled = ChatResult | LLMCallError


def _settle(
    client: LLMClient, requests: Sequence[ChatRequest], description: str, *, refresh: bool
) -> list[Settled]:
    """Every request's reply, or the error that ended it (one failed call is one failed row,
    not a failed stage)."""

    async def one(request: ChatRequest) -> Settled:
        try:
            return await client.acomplete(request, refresh=refresh)
        except LLMCallError as exc:
            return exc

    if not requests:
        return []
    return client.run_sync(
        client.amap(requests, one, description=description, prefix=request_prefix)
    )


def _outcome(
    settled: Settled, request: ChatRequest, attempts: int, check: ReplyCheck | None
) -> Generation:
    if isinstance(settled, LLMCallError):
        return Generation(None, attempts, f"{ERROR}: {settled}", request.max_tokens)
    return Generation(settled, attempts, reply_problem(settled, check), request.max_tokens)


def _generate(
    client: LLMClient,
    requests: Sequence[ChatRequest],
    description: str,
    checks: Sequence[ReplyCheck | None],
    *,
    refresh: bool,
) -> list[Generation]:
    first = _settle(client, requests, description, refresh=refresh)
    outcomes = [_outcome(s, r, 1, c) for s, r, c in zip(first, requests, checks, strict=True)]
    again = [
        i
        for i, outcome in enumerate(outcomes)
        if outcome.failure is not None and outcome.reason != ERROR
    ]
    retries = [
        requests[i].model_copy(update={"max_tokens": requests[i].max_tokens * RETRY_TOKEN_FACTOR})
        for i in again
    ]
    second = _settle(
        client, retries, f"{description} (retry, larger budget)".strip(), refresh=refresh
    )
    for i, settled, retry in zip(again, second, retries, strict=True):
        outcome = _outcome(settled, retry, 2, checks[i])
        outcomes[i] = replace(outcome, first_failure=outcomes[i].failure)
    return outcomes


def _failed_from_cache(outcome: Generation) -> bool:
    """A failure that replaying the cache would only repeat: its last reply was cached."""
    return (
        outcome.failure is not None
        and outcome.reason != ERROR
        and outcome.result is not None
        and outcome.result.cached
    )


def generate_checked(
    client: LLMClient,
    requests: Sequence[ChatRequest],
    *,
    description: str = "model calls",
    check: ReplyCheck | Sequence[ReplyCheck | None] | None = None,
) -> list[Generation]:
    """One checked generation per request, in order (a batch, then a batch of retries).
    `check` is one check for every reply or one per request."""
    checks = list(check) if isinstance(check, Sequence) else [check] * len(requests)
    if len(checks) != len(requests):
        raise ValueError("give one check per request")
    outcomes = _generate(client, requests, description, checks, refresh=False)
    if client.settings.refresh_failed:
        stale = [i for i, outcome in enumerate(outcomes) if _failed_from_cache(outcome)]
        fresh = _generate(
            client,
            [requests[i] for i in stale],
            f"{description} (re-asking failures)".strip(),
            [checks[i] for i in stale],
            refresh=True,
        )
        for i, outcome in zip(stale, fresh, strict=True):
            outcomes[i] = outcome
    return outcomes


class FailureTally:
    """`failure_tally` summed over several batches, keeping counts rather than the outcomes
    (a long job's replies need not stay in memory to be counted)."""

    def __init__(self) -> None:
        self.outputs = 0
        self.retried = 0
        self.failed = 0
        self.by_reason: dict[str, int] = {}
        self.retried_by_reason: dict[str, int] = {}

    def add(self, outcomes: Iterable[Generation | None]) -> FailureTally:
        for outcome in outcomes:
            if outcome is None:
                continue
            self.outputs += 1
            self.retried += outcome.attempts > 1
            self.failed += not outcome.ok
            if outcome.reason is not None:
                self.by_reason[outcome.reason] = self.by_reason.get(outcome.reason, 0) + 1
            if outcome.first_failure is not None:
                kind = outcome.first_failure.split(":", 1)[0]
                self.retried_by_reason[kind] = self.retried_by_reason.get(kind, 0) + 1
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "outputs": self.outputs,
            "retried": self.retried,
            "retried_by_reason": dict(sorted(self.retried_by_reason.items())),
            "failed": self.failed,
            "by_reason": dict(sorted(self.by_reason.items())),
        }


def failure_tally(outcomes: Iterable[Generation | None]) -> dict[str, Any]:
    """Counts for the manifest and the report: outputs, retried, failed, and failures by
    reason. `None` is a row the step never generated (an earlier step failed)."""
    return FailureTally().add(outcomes).as_dict()


# The manifest stats key every stage files its per-step tallies under.
STATS_KEY = "generation"


def stage_failures(stats: Mapping[str, Any]) -> int:
    """Failed rows a stage recorded: generation failures plus verdict (parse) errors."""
    steps = stats.get(STATS_KEY) or {}
    generated = sum(int(tally.get("failed", 0)) for tally in steps.values())
    return generated + int(stats.get("verdict_errors") or 0)

"""Plausibility checks on a model's reply, applied before it is used or cached.

A reply that passes JSON parsing can still be unusable: a NaN or positive log-probability, a
negative token count (which would turn into negative cost and offset spend against --max-cost),
or a reply far longer than the request's max_tokens allows. Such a reply is treated like a
malformed body: the HTTP backend retries it and then fails with one clear line; it is never cached.
"""

from __future__ import annotations

import math
from typing import Any

from persona_testbed.llm.types import ChatRequest

# A log-probability is <= 0; servers round, so allow a hair above it.
LOGPROB_TOLERANCE = 1e-4
# No single request legitimately reports more tokens than this.
MAX_PLAUSIBLE_TOKENS = 10_000_000
# Tokenisers differ and some servers count special tokens: allow slack over max_tokens before
# calling a reply "far beyond" it.
COMPLETION_SLACK = 2.0
COMPLETION_EXTRA_TOKENS = 16
# The longest text one token can decode to, generously (long URLs or runs of spaces).
MAX_CHARS_PER_TOKEN = 64


def usage_problem(usage: Any) -> str | None:
    """Why a body's `usage` block is unusable, or None."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        return f"usage is not an object ({usage!r:.40})"
    for name in ("prompt_tokens", "completion_tokens"):
        value = usage.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"usage.{name} is not a number ({value!r:.40})"
        if not math.isfinite(value) or value != int(value):
            return f"usage.{name} is not a whole number ({value!r})"
        if value < 0:
            return f"usage.{name} is negative ({int(value)})"
        if value > MAX_PLAUSIBLE_TOKENS:
            return f"usage.{name} is implausibly large ({int(value):,})"
    return None


def logprob_problem(token: str, logprob: float) -> str | None:
    """Why one (token, logprob) pair is unusable, or None."""
    if not math.isfinite(logprob):
        return f"logprob of token {token!r} is {logprob} (not finite)"
    if logprob > LOGPROB_TOLERANCE:
        return f"logprob of token {token!r} is {logprob:g} (> 0, not a log-probability)"
    return None


def length_problem(request: ChatRequest, text: str, completion_tokens: int) -> str | None:
    """Why a reply is far beyond the request's max_tokens, or None."""
    limit = request.max_tokens * COMPLETION_SLACK + COMPLETION_EXTRA_TOKENS
    if completion_tokens > limit:
        return (
            f"reply reports {completion_tokens:,} completion tokens for max_tokens="
            f"{request.max_tokens}"
        )
    if len(text) > limit * MAX_CHARS_PER_TOKEN:
        return f"reply is {len(text):,} characters long for max_tokens={request.max_tokens}"
    return None

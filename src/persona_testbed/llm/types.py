"""Typed requests and results of the LLM layer."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]
# How a choice was scored: first-token log-probabilities, or (where the endpoint returns none) a
# constrained one-label answer per option order (llm.choice).
ChoiceMethod = Literal["logprobs", "constrained"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class ChatRequest(BaseModel):
    """Everything that decides a model's answer; its canonical JSON is the cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="model spec, e.g. local:smollm2-135m or openai:gpt-4o-mini")
    messages: tuple[Message, ...]
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = Field(256, ge=1)
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    sample_index: int = Field(0, description="distinguishes repeated samples of one prompt")
    response_format: dict[str, Any] | None = None
    top_logprobs: int | None = Field(
        None, description="when set, return this many alternatives for the first generated token"
    )

    def effective_seed(self) -> int | None:
        """The seed sent to the model: repeated samples must not repeat the same draw."""
        if self.seed is None:
            return None
        return (self.seed + self.sample_index * 1_000_003) % (2**31 - 1)

    def canonical_json(self) -> str:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    def cache_key(self, backend_identity: str, canonical: str | None = None) -> str:
        """Hash of the request plus what else decides the answer (the endpoint or model file).
        `canonical`: this request's `canonical_json()` when the caller already has it."""
        if canonical is None:
            canonical = self.canonical_json()
        payload = backend_identity + "\n" + canonical
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class TokenLogprob(BaseModel):
    token: str
    # A NaN would be stored as null and fail to load again: refuse it at construction.
    logprob: float = Field(allow_inf_nan=False)


class ChatResult(BaseModel):
    text: str
    # Never negative: negative usage would be negative cost, offsetting spend under --max-cost.
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    finish_reason: str | None = None
    top_logprobs: list[TokenLogprob] | None = Field(
        None, description="alternatives for the first generated token, most likely first"
    )
    model: str = ""
    cached: bool = Field(False, description="answered from the response cache")


SchemaT = TypeVar("SchemaT", bound=BaseModel)


class Structured(BaseModel, Generic[SchemaT]):
    """A reply parsed into a pydantic model; on failure `value` is None and `error` says why."""

    value: SchemaT | None = None
    raw: str
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.value is not None


class Choice(BaseModel):
    """Probabilities over the options of a multiple-choice question."""

    labels: list[str]
    probs: list[float]
    coverage: float = Field(
        description="probability mass the model put on the option tokens before renormalising"
        " (the mean over orders when several option orders were scored)"
    )
    order_coverage: list[float] = Field(
        default_factory=list,
        description="per scored option order, the mass on the option tokens (empty: one order)",
    )
    method: ChoiceMethod = Field(
        "logprobs",
        description="logprobs: probabilities from first-token log-probabilities; constrained: "
        "each order answered with one allowed label (probabilities 0/1 per order)",
    )

    @property
    def undecided(self) -> bool:
        """No usable answer: some scored order (or the single one) put no mass on any label.

        Such a choice is never a preference: its `probs` are uniform and it must be counted."""
        return self.coverage <= 0.0 or any(c <= 0.0 for c in self.order_coverage)

    @property
    def best(self) -> int:
        return max(range(len(self.probs)), key=self.probs.__getitem__)

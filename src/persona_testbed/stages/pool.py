"""One model pool: opens a client per model spec and sums what every client used.

A stage asks the pool for the clients it needs (`get(spec)`); one spec gets one client within a
stage, and all of a stage's clients are closed when it ends (`stage()`). The pool's `usage`
adds up every client it ever opened, per model, so a run reports its spend in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from persona_testbed.llm import ClientSettings, LLMClient, ModelUsage
from persona_testbed.llm.usage import merge_usage


class ModelPool:
    """Clients by spec for the stage that runs now; usage summed over every stage."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._open: dict[str, LLMClient] = {}
        self._spent: dict[str, ModelUsage] = {}

    def get(self, spec: str) -> LLMClient:
        """The client of `spec` (opened on first use; a bad spec fails here, one line)."""
        client = self._open.get(spec)
        if client is None:
            client = LLMClient.from_spec(spec, self.settings)
            self._open[spec] = client
        return client

    def clients(self, specs: Iterable[str]) -> dict[str, LLMClient]:
        """One client per distinct spec, in first-use order."""
        return {spec: self.get(spec) for spec in dict.fromkeys(specs)}

    @property
    def usage(self) -> dict[str, ModelUsage]:
        """Per model: everything the pool's clients used (closed ones included)."""
        return merge_usage(self._spent, *(client.usage for client in self._open.values()))

    def close(self) -> None:
        for client in self._open.values():
            self._spent = merge_usage(self._spent, client.usage)
            client.close()
        self._open.clear()

    @contextmanager
    def stage(self) -> Iterator[ModelPool]:
        """A stage's clients, closed when it ends (its usage is kept in the pool's total)."""
        try:
            yield self
        finally:
            self.close()

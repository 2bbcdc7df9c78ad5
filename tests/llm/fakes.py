"""Scripted models used by the LLM-layer tests."""

from __future__ import annotations

import asyncio

from persona_testbed.llm import ChatRequest, ChatResult
from persona_testbed.testing import ScriptedBackend


def echo(request: ChatRequest) -> str:
    return "echo: " + request.messages[-1].content


class ConcurrencyProbe(ScriptedBackend):
    """Records the most requests it was serving at the same time."""

    def __init__(self, latency_s: float = 0.01) -> None:
        super().__init__(echo, latency_s=latency_s)
        self.active = 0
        self.peak = 0

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0)
            return await super().complete(request)
        finally:
            self.active -= 1

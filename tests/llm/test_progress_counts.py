"""The progress bar of a batch counts that batch's cache hits, not those of earlier steps
(issue 18: bars contradicted the summary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_testbed.llm import ClientSettings, LLMClient, Message
from persona_testbed.llm.progress import BatchProgress
from persona_testbed.testing import ScriptedBackend

from .fakes import echo


def test_each_batch_shows_its_own_cache_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[int] = []
    monkeypatch.setattr(BatchProgress, "advance", lambda self, hits: shown.append(hits))
    settings = ClientSettings(cache_path=tmp_path / "c.sqlite", show_progress=False)
    client = LLMClient(ScriptedBackend(echo), settings)

    def batch(prefix: str) -> list[int]:
        shown.clear()
        requests = [client.request([Message(role="user", content=f"{prefix}{i}")]) for i in "ab"]
        client.complete_batch(requests)
        return list(shown)

    assert batch("q") == [0, 0]  # new requests
    assert sorted(batch("q")) == [1, 2]  # the same again: all from the cache
    assert batch("new") == [0, 0]  # a later step with new requests starts from zero
    client.close()

"""A lazily loaded local model is loaded once, before its first call, under a "loading model"
spinner; a run answered from the cache never loads it (issue 16: long steps show progress)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from persona_testbed.llm import ChatRequest, ChatResult, ClientSettings, LLMClient, Message
from persona_testbed.llm import progress as progress_module
from persona_testbed.llm.backends.base import LoadsModel
from persona_testbed.llm.progress import BatchProgress, set_progress, status
from persona_testbed.testing.scripted import ScriptedBackend

from .fakes import echo


class SlowLoadingBackend(ScriptedBackend):
    """A scripted model that must be loaded first, like a GGUF file."""

    def __init__(self) -> None:
        super().__init__(echo, model_id="gguf:fake.gguf")
        self.loads = 0
        self.spinner_seen: list[str] = []
        self._loaded = threading.Event()

    def is_loaded(self) -> bool:
        return self._loaded.is_set()

    def load(self) -> None:
        self.loads += 1
        self.spinner_seen.append(terminal.getvalue())
        self._loaded.set()

    async def complete(self, request: ChatRequest) -> ChatResult:
        assert self.is_loaded(), "a call reached the model before it was loaded"
        return await super().complete(request)


terminal = io.StringIO()


@pytest.fixture
def on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """stderr as a terminal, written to a buffer (spinners show only on a terminal)."""
    terminal.seek(0)
    terminal.truncate()
    console = Console(file=terminal, force_terminal=True, width=120)
    monkeypatch.setattr(progress_module, "stderr_console", lambda: console)
    set_progress(True)
    yield terminal
    set_progress(True)


def requests(client: LLMClient, count: int) -> list[ChatRequest]:
    return [client.request([Message(role="user", content=f"q{i}")]) for i in range(count)]


def test_the_model_loads_once_under_a_spinner_before_the_first_call(
    tmp_path: Path, on_a_terminal: io.StringIO
) -> None:
    backend = SlowLoadingBackend()
    assert isinstance(backend, LoadsModel)
    settings = ClientSettings(cache_path=tmp_path / "c.sqlite", concurrency=4)
    client = LLMClient(backend, settings)
    # No bar here (a bar takes the spinner's text instead): one call at a time.
    client.complete(requests(client, 1)[0])
    results = client.complete_batch(requests(client, 6))
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(6)]
    assert backend.loads == 1
    # The spinner was on screen (its live display had started) while the model loaded ...
    assert backend.spinner_seen[0] != ""
    # ... and said what was loading.
    assert "loading model gguf:fake.gguf" in on_a_terminal.getvalue()
    client.close()


def test_a_run_answered_from_the_cache_never_loads_the_model(tmp_path: Path) -> None:
    settings = ClientSettings(cache_path=tmp_path / "c.sqlite", show_progress=False)
    first = LLMClient(SlowLoadingBackend(), settings)
    first.complete_batch(requests(first, 3))
    first.close()
    again = SlowLoadingBackend()
    client = LLMClient(again, settings)
    client.complete_batch(requests(client, 3))
    assert again.loads == 0 and again.calls == []
    client.close()


def test_no_spinner_with_no_progress_or_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, on_a_terminal: io.StringIO
) -> None:
    set_progress(False)
    with status("embedding 3 prompts"):
        pass
    assert on_a_terminal.getvalue() == ""
    set_progress(True)
    plain = io.StringIO()
    monkeypatch.setattr(progress_module, "stderr_console", lambda: Console(file=plain))
    with status("embedding 3 prompts"):
        pass
    assert plain.getvalue() == ""  # a log file gets no spinner frames


def test_a_spinner_during_a_batch_borrows_the_bar(on_a_terminal: io.StringIO) -> None:
    bar = BatchProgress("model calls", 3, enabled=True)
    descriptions = []
    with bar:
        with status("loading model gguf:x"):
            descriptions.append(bar._progress.tasks[0].description)
        descriptions.append(bar._progress.tasks[0].description)
    assert descriptions == ["loading model gguf:x", "model calls"]

"""Execution modes of the LLM layer: how a wave of requests the cache lacks gets answered when
it is not sent online one by one.

In every non-online mode the client holds each uncached request of a batch (`amap`) instead of
sending it; when the batch's workers are done, the held requests form one *wave* and go to the
mode's `WaveExecutor`. The executor either puts answers in the response cache (a provider batch
API, a Ray job) — the client then re-runs the held items, which now replay from the cache and may
hold follow-up requests (a re-ask, the second choice order) for the next wave — or stops the
stage with a `PersonaError` saying how to go on (an exported file, a submitted batch under
`--no-wait`). The cache stays the system of record: however a request was executed, its answer
is stored under the key the online client would have used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from persona_testbed.errors import PersonaError
from persona_testbed.llm.batchfiles import BatchExportedError, PendingRequest, write_batch
from persona_testbed.llm.settings import default_batch_dir

if TYPE_CHECKING:
    from persona_testbed.llm.client import LLMClient


class WaveExecutor(Protocol):
    """Answers one wave of held requests (cache key -> request) outside the online path."""

    async def run_wave(self, client: LLMClient, pending: Mapping[str, PendingRequest]) -> None:
        """Put what it answers in `client.cache`, or raise a PersonaError that stops the stage.

        A request it could not answer is left out of the cache: the client holds it again in
        the next wave, so an executor bounds its own retries."""
        ...


class ExportExecutor:
    """execution: export — write the wave as an OpenAI Batch input file and stop the stage."""

    def __init__(self, batch_dir: Path) -> None:
        self.batch_dir = batch_dir

    async def run_wave(self, client: LLMClient, pending: Mapping[str, PendingRequest]) -> None:
        path = write_batch(self.batch_dir, client.model_id, pending)
        raise BatchExportedError(len(pending), client.model_id, path, client.served_model)


ExecutorFactory = Callable[["LLMClient"], WaveExecutor]

# execution setting -> how a client builds its executor; "online" has none. A new mode is one
# module with a factory and one `register_execution` line.
_FACTORIES: dict[str, ExecutorFactory] = {}


def register_execution(name: str, factory: ExecutorFactory) -> None:
    _FACTORIES[name] = factory


# Modes whose module (and its optional dependency) is imported only when a client uses them.
_LAZY_MODULES: dict[str, str] = {"ray": "persona_testbed.llm.ray_execution"}


def make_executor(client: LLMClient) -> WaveExecutor | None:
    mode = client.settings.execution
    if mode == "online":
        return None
    if mode not in _FACTORIES and mode in _LAZY_MODULES:
        importlib.import_module(_LAZY_MODULES[mode])  # registers the mode
    factory = _FACTORIES.get(mode)
    if factory is None:
        known = ", ".join(["online", *sorted({*_FACTORIES, *_LAZY_MODULES})])
        raise PersonaError(f"unknown llm execution '{mode}' (known: {known})")
    return factory(client)


def _export_factory(client: LLMClient) -> WaveExecutor:
    if client.cache is None:
        raise PersonaError(
            "--execution export needs the response cache (imported replies land there); "
            "drop --no-cache"
        )
    return ExportExecutor(client.settings.batch_dir or default_batch_dir(client.cache.path))


register_execution("export", _export_factory)


def _batch_factory(client: LLMClient) -> WaveExecutor:
    # Imported here: the provider SDKs load only when a client runs under execution: batch.
    from persona_testbed.llm.providerbatch.executor import make_batch_executor

    return make_batch_executor(client)


register_execution("batch", _batch_factory)

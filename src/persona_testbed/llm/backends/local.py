"""What every in-process GGUF runtime shares: the cores a call may use, the process-wide compute
gate, and which runtime serves `local:`/`gguf:` specs.

Two runtimes run GGUF files in-process: `xllamacpp` (a prebuilt wheel, the default) and
`llama-cpp-python` (built from source). They do not give bit-identical answers, so the runtime
is part of every local backend's cache identity and is recorded with each stage's usage.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal, get_args

from persona_testbed.errors import PersonaError
from persona_testbed.llm.backends.base import LLMCallError

LocalRuntime = Literal["xllamacpp", "llama-cpp-python"]
LOCAL_RUNTIMES: tuple[LocalRuntime, ...] = get_args(LocalRuntime)

# runtime -> (importable module, how to install it)
_RUNTIME_INSTALL: dict[LocalRuntime, tuple[str, str]] = {
    "xllamacpp": ("xllamacpp", "pip install xllamacpp (or make setup)"),
    "llama-cpp-python": (
        "llama_cpp",
        "pip install 'persona-testbed[llama-cpp-python]' (builds from source; "
        "or make setup LOCAL_RUNTIME=llama-cpp-python)",
    ),
}


def runtime_version(runtime: LocalRuntime) -> str:
    """`runtime` and its installed version, as each stage's usage records it."""
    try:
        return f"{runtime} {version(runtime)}"
    except PackageNotFoundError:
        return runtime


def gguf_file(model_id: str, model_path: Path) -> Path:
    """The model's GGUF file; a missing one fails naming the model and the path."""
    path = Path(model_path)
    if not path.is_file():
        raise LLMCallError(f"model {model_id}: GGUF file not found: {path}")
    return path


def gguf_identity(path: Path) -> str:
    """The file part of a local model's cache identity: its name and size."""
    return f"gguf:{path.name}:{path.stat().st_size}"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def runtime_installed(runtime: LocalRuntime) -> bool:
    return importlib.util.find_spec(_RUNTIME_INSTALL[runtime][0]) is not None


def installed_runtimes() -> list[LocalRuntime]:
    return [runtime for runtime in LOCAL_RUNTIMES if runtime_installed(runtime)]


def install_hint(runtime: LocalRuntime) -> str:
    return _RUNTIME_INSTALL[runtime][1]


def runtime_from_env() -> LocalRuntime | None:
    """PERSONA_LOCAL_RUNTIME, checked; None (unset or `auto`): the first installed runtime."""
    value = os.environ.get("PERSONA_LOCAL_RUNTIME", "").strip()
    if not value or value == "auto":
        return None
    if value not in LOCAL_RUNTIMES:
        raise PersonaError(
            f"PERSONA_LOCAL_RUNTIME must be one of auto, {', '.join(LOCAL_RUNTIMES)}, not {value!r}"
        )
    return value


def resolve_runtime(requested: LocalRuntime | None, spec: str) -> LocalRuntime:
    """The runtime that will serve `spec`: the requested one if installed, otherwise (when none
    was requested) the first installed in LOCAL_RUNTIMES order; a one-line error says how to
    install what is missing."""
    if requested is not None:
        if not runtime_installed(requested):
            raise PersonaError(
                f"model {spec}: local runtime {requested} is not installed "
                f"({install_hint(requested)})"
            )
        return requested
    found = installed_runtimes()
    if found:
        return found[0]
    raise PersonaError(f"model {spec}: no local runtime is installed ({install_hint('xllamacpp')})")


class ComputeGate:
    """One local model computes at a time in this process.

    Each call already uses every core, so two models computing at once would only compete for
    them. A runtime serving several sequences in one batch may admit that many calls of the same
    model at once: the gate belongs to one owner at a time, with any number of its calls inside.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._owner: object | None = None
        self._inside = 0

    def enter(self, owner: object) -> None:
        with self._condition:
            while self._owner is not None and self._owner is not owner:
                self._condition.wait()
            self._owner = owner
            self._inside += 1

    def leave(self) -> None:
        with self._condition:
            self._inside -= 1
            if self._inside == 0:
                self._owner = None
                self._condition.notify_all()


# Shared by every local backend of the process, whichever runtime; see ComputeGate.
COMPUTE_GATE = ComputeGate()

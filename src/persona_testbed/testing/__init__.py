"""Test doubles for tests and benchmarks, never used by a stage: a scripted fake model, an
OpenAI-compatible loopback server with fault injection (`persona_testbed.testing.loopback`,
imported on its own: it starts a subprocess), and fake run-directory inputs."""

from persona_testbed.testing.runs import (
    PERSONA_SCHEMA,
    dropped,
    persona_row,
    personas_frame,
    placeholder,
    prompt_row,
    write_personas,
    write_prompts,
)
from persona_testbed.testing.scripted import Script, ScriptedBackend, ScriptReply, scripted_client
from persona_testbed.testing.truncating import TruncatingBackend

__all__ = [
    "PERSONA_SCHEMA",
    "Script",
    "ScriptReply",
    "ScriptedBackend",
    "TruncatingBackend",
    "dropped",
    "persona_row",
    "personas_frame",
    "placeholder",
    "prompt_row",
    "scripted_client",
    "write_personas",
    "write_prompts",
]

"""parse_reply: JSON replies into pydantic models, with the tolerances local models need."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from persona_testbed.llm import ClientSettings, LLMClient, Message, parse_reply
from persona_testbed.testing import ScriptedBackend


class Verdict(BaseModel):
    reasoning: str
    needs_revision: bool


def test_raw_newlines_and_tabs_inside_strings_are_read() -> None:
    # llama.cpp JSON grammars let a model write a newline or tab inside a string unescaped.
    value, error = parse_reply('{"reasoning": "fits\n\twell", "needs_revision": false}', Verdict)
    assert error is None
    assert value == Verdict(reasoning="fits\n\twell", needs_revision=False)


def test_raw_newlines_are_read_inside_prose_and_fences() -> None:
    text = 'Here:\n```json\n{"reasoning": "line one\nline two", "needs_revision": true}\n```'
    value, error = parse_reply(text, Verdict)
    assert error is None
    assert value == Verdict(reasoning="line one\nline two", needs_revision=True)


def test_other_broken_json_is_still_an_error() -> None:
    value, error = parse_reply('{"reasoning": "fits\nwell", "needs_revision": maybe}', Verdict)
    assert value is None
    assert error is not None and error.startswith("reply: Invalid JSON")


def test_a_wrong_field_is_named_even_with_raw_newlines() -> None:
    value, error = parse_reply('{"reasoning": "a\nb", "needs_revision": "perhaps"}', Verdict)
    assert value is None
    assert error is not None and error.startswith("needs_revision:")


def test_structured_call_takes_a_reply_with_raw_newlines_without_a_reask(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda request: '{"reasoning": "a\nb", "needs_revision": false}')
    settings = ClientSettings(cache_path=tmp_path / "cache.sqlite", show_progress=False)
    client = LLMClient(backend, settings)
    [result] = client.structured_batch(
        [client.request([Message(role="user", content="judge")])], Verdict
    )
    client.close()
    assert result.value == Verdict(reasoning="a\nb", needs_revision=False)
    assert result.attempts == 1 and len(backend.calls) == 1

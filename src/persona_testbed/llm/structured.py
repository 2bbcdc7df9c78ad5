"""Structured output: JSON-schema response formats and parsing replies into pydantic models."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from persona_testbed import templates
from persona_testbed.llm.types import SchemaT
from persona_testbed.templates import USER, PromptTemplate, TemplateSpec

# The message that asks again after an unusable structured reply: llm/templates/reask.txt.
REASK_TEMPLATE = TemplateSpec("reask", frozenset({"error"}), frozenset({"error"}), sections=(USER,))


def json_schema_format(schema: type[BaseModel]) -> dict[str, Any]:
    """OpenAI-style response_format; the local backend turns it into a llama.cpp grammar."""
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
    }


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "reply"
    return f"{where}: {first['msg']}"


def _validate_json(candidate: str, schema: type[SchemaT]) -> SchemaT:
    """`candidate` as `schema`. JSON whose only flaw is a raw control character inside a string
    (a newline or tab: llama.cpp JSON grammars allow them) is still read; otherwise the error
    is the strict parser's."""
    try:
        return schema.model_validate_json(candidate)
    except ValidationError as exc:
        if exc.errors()[0]["type"] != "json_invalid":
            raise
        strict_error = exc
    try:
        relaxed = json.loads(candidate, strict=False)
    except ValueError:
        raise strict_error from None
    # Validated as JSON again (escaped now), so the same JSON-mode rules apply as above.
    return schema.model_validate_json(json.dumps(relaxed))


def parse_reply(text: str, schema: type[SchemaT]) -> tuple[SchemaT | None, str | None]:
    """Parse `text` as `schema`; tolerate prose or code fences around one JSON object, and raw
    newlines or tabs inside its strings."""
    candidates = [text.strip()]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    error = "the reply holds no JSON object"
    for candidate in candidates:
        try:
            return _validate_json(candidate, schema), None
        except ValidationError as exc:
            error = _describe(exc)
    return None, error


def reask_template() -> PromptTemplate:
    return templates.load_bundled("persona_testbed.llm", REASK_TEMPLATE)


def reask_message(error: str) -> str:
    return reask_template().fill(USER, error=error)


def reask_digest() -> str:
    """The re-ask prompt's digest: in every stage's fingerprint (any structured call sends it)."""
    return templates.digest([reask_template()])

"""Structured output: JSON-schema response formats and parsing replies into pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from persona_testbed.llm.types import SchemaT


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


def parse_reply(text: str, schema: type[SchemaT]) -> tuple[SchemaT | None, str | None]:
    """Parse `text` as `schema`; tolerate prose or code fences around one JSON object."""
    candidates = [text.strip()]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    error = "the reply holds no JSON object"
    for candidate in candidates:
        try:
            return schema.model_validate_json(candidate), None
        except ValidationError as exc:
            error = _describe(exc)
    return None, error


def reask_message(error: str) -> str:
    return (
        f"That reply could not be used ({error}). Reply again with only a JSON object "
        "that matches the requested schema."
    )

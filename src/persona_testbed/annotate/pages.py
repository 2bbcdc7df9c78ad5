"""Rendering the HTML pages. All wording lives in the template files; autoescaping is on for
every template, because persona, question and answer text may contain HTML or script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Scope

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

# HTTP status -> error template kind, for errors raised by the framework itself.
STATUS_KINDS = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "server_error",
}


def persona_lines(text: str) -> list[tuple[str | None, str]]:
    """The persona card's rows: ("attribute", "value") for `attribute: value` lines, else
    (None, line) for free text."""
    rows: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(": ")
        if sep and name.strip() and len(name) <= 60:
            rows.append((name.strip(), value.strip()))
        else:
            rows.append((None, line.strip()))
    return rows


class Pages:
    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["persona_lines"] = persona_lines

    def html(self, name: str, context: dict[str, Any], root_path: str = "") -> str:
        return self.env.get_template(name).render(root=root_path, **context)

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        root_path = str(request.scope.get("root_path", ""))
        return HTMLResponse(self.html(name, context, root_path), status_code=status)

    def error(self, scope: Scope, kind: str, status: int) -> HTMLResponse:
        """A plain error page: a title and a sentence, never a traceback."""
        root_path = str(scope.get("root_path", ""))
        body = self.html("error.html", {"kind": kind, "status": status}, root_path)
        return HTMLResponse(body, status_code=status)

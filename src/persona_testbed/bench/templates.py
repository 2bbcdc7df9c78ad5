"""Prompt templates of the bench: one template file per method step and per judge.

Each file has a `[system]` and a `[user]` section with `$name` placeholders (the project's one
template format, `persona_testbed.templates`); a literal dollar sign is `$$`. The bench's
rendered messages are trimmed of surrounding whitespace. `--templates DIR` replaces any of the
bundled files with a file of the same name in DIR.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from persona_testbed import templates as prompt_templates
from persona_testbed.errors import InputError
from persona_testbed.templates import PromptTemplate, TemplateSpec

# Template name -> the placeholders it may use.
TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    "no-persona": frozenset({"question"}),
    "persona": frozenset({"persona", "question"}),
    "persona-cot": frozenset({"persona", "question"}),
    "persona-summary.summarize": frozenset({"persona", "question"}),
    "persona-summary": frozenset({"persona", "question", "summary"}),
    "critic": frozenset({"persona", "question", "answer"}),
    "subtlety": frozenset({"persona", "question", "answer"}),
    "summary-drop-judge": frozenset({"summary", "attribute", "value"}),
}
PACKAGE = "persona_testbed.bench"


def template_spec(name: str) -> TemplateSpec:
    return TemplateSpec(name, TEMPLATE_FIELDS[name], trim=True)


def parse_template(name: str, text: str, origin: str) -> PromptTemplate:
    """Split a template file into its sections and check its placeholders."""
    return prompt_templates.parse_template(text, origin, template_spec(name))


@dataclass(frozen=True)
class TemplateSet:
    """Every template a bench run uses."""

    templates: dict[str, PromptTemplate]

    @classmethod
    def load(cls, override_dir: Path | None = None) -> TemplateSet:
        if override_dir is not None and not override_dir.is_dir():
            raise InputError(f"{override_dir}: --templates must be a directory")
        bundled = prompt_templates.bundled_path(PACKAGE)
        loaded: dict[str, PromptTemplate] = {}
        for name in TEMPLATE_FIELDS:
            spec = template_spec(name)
            custom = override_dir / spec.file_name if override_dir is not None else None
            path = custom if custom is not None and custom.is_file() else bundled / spec.file_name
            loaded[name] = prompt_templates.read_template(path, spec)
        return cls(loaded)

    def __getitem__(self, name: str) -> PromptTemplate:
        return self.templates[name]

    def digest(self) -> str:
        """Hash of every template's text: part of the stage config, so edits are noticed."""
        return prompt_templates.digest(self.templates.values())


class _BenchSection(Protocol):
    @property
    def templates(self) -> Path | None: ...


def template_digest(config: _BenchSection) -> str:
    """The digest of every template the bench sends (bundled, or overridden by `templates:`)."""
    return TemplateSet.load(config.templates).digest()

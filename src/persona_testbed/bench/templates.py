"""Prompt templates of the bench: one text file per method step and per judge.

A template file has a `[system]` section and a `[user]` section; `$name` placeholders are filled
with `string.Template`, so literal dollar signs are written `$$`. `--templates DIR` replaces any
of the bundled files with a file of the same name in DIR.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from persona_testbed.errors import InputError
from persona_testbed.llm import Message

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

SECTIONS = ("[system]", "[user]")


@dataclass(frozen=True)
class PromptTemplate:
    """One template: a system part (may be empty) and a user part."""

    name: str
    origin: str
    text: str
    system: Template
    user: Template

    def render(self, **values: str) -> list[Message]:
        missing = self.fields() - values.keys()
        if missing:
            raise InputError(f"{self.origin}: no value for ${', $'.join(sorted(missing))}")
        messages = []
        system = self.system.substitute(values).strip()
        if system:
            messages.append(Message(role="system", content=system))
        messages.append(Message(role="user", content=self.user.substitute(values).strip()))
        return messages

    def fields(self) -> set[str]:
        return set(self.system.get_identifiers()) | set(self.user.get_identifiers())


def parse_template(name: str, text: str, origin: str) -> PromptTemplate:
    """Split a template file into its sections and check its placeholders."""
    parts: dict[str, list[str]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        marker = line.strip().lower()
        if marker in SECTIONS:
            if marker in parts:
                raise InputError(f"{origin}:{number}: section {marker} appears twice")
            current = marker
            parts[current] = []
        elif current is None:
            if line.strip():
                raise InputError(f"{origin}:{number}: text before the first [system]/[user] line")
        else:
            parts[current].append(line)
    if "[user]" not in parts:
        raise InputError(f"{origin}: no [user] section")
    system = Template("\n".join(parts.get("[system]", [])))
    user = Template("\n".join(parts["[user]"]))
    for part in (system, user):
        if not part.is_valid():
            raise InputError(f"{origin}: invalid placeholder (write a literal $ as $$)")
    template = PromptTemplate(name=name, origin=origin, text=text, system=system, user=user)
    unknown = template.fields() - TEMPLATE_FIELDS[name]
    if unknown:
        allowed = ", ".join(f"${f}" for f in sorted(TEMPLATE_FIELDS[name]))
        raise InputError(
            f"{origin}: unknown placeholder ${', $'.join(sorted(unknown))} (allowed: {allowed})"
        )
    return template


def _bundled_text(name: str) -> str:
    return (resources.files("persona_testbed.bench") / "templates" / f"{name}.txt").read_text(
        "utf-8"
    )


@dataclass(frozen=True)
class TemplateSet:
    """Every template a bench run uses."""

    templates: dict[str, PromptTemplate]

    @classmethod
    def load(cls, override_dir: Path | None = None) -> TemplateSet:
        if override_dir is not None and not override_dir.is_dir():
            raise InputError(f"{override_dir}: --templates must be a directory")
        loaded: dict[str, PromptTemplate] = {}
        for name in TEMPLATE_FIELDS:
            custom = override_dir / f"{name}.txt" if override_dir is not None else None
            if custom is not None and custom.is_file():
                try:
                    text = custom.read_text("utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise InputError(f"{custom}: cannot read the template ({exc})") from None
                loaded[name] = parse_template(name, text, str(custom))
            else:
                loaded[name] = parse_template(name, _bundled_text(name), f"bundled {name}.txt")
        return cls(loaded)

    def __getitem__(self, name: str) -> PromptTemplate:
        return self.templates[name]

    def digest(self) -> str:
        """Hash of every template's text: part of the stage config, so edits are noticed."""
        digest = hashlib.sha256()
        for name in sorted(self.templates):
            digest.update(f"{name}\n{self.templates[name].text}\n".encode())
        return digest.hexdigest()[:16]

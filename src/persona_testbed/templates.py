"""Prompt templates: the one mechanism every stage uses for the text it sends to a model.

A template is a UTF-8 text file of named sections, each opened by a line `[name]` (usually
`[system]` and `[user]`; a stage may declare others, such as the answer options of a choice).
A section's text is exactly
its lines up to the next section line (the line break that ends its last line is not part of
it), so what the file shows is what the model gets; blank lines before the first section are
ignored. Placeholders are `$name` (or `${name}`), filled by `string.Template` in one pass, so
a value's own `$` or braces are never read as placeholders; a literal dollar sign is `$$`.

Why `$name` rather than `{name}` (str.format): prompts often show the model a JSON object
(`{"consistent": true, ...}`), which `{name}` syntax would force to be written with doubled
braces; a dollar sign is rare in a prompt. Why sections in one file: a step's system and user
messages are read, edited and digested together.

Every template a stage uses is in that stage's fingerprint (`digest`), so editing a prompt
re-runs the stage in `persona run`. Each stage declares its templates (`TemplateSpec`: the
placeholders each may use and must use), and a template that breaks those rules fails on load
with a one-line error naming the file; rendering with a missing value names the file and the
placeholder.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from persona_testbed.errors import InputError

if TYPE_CHECKING:
    from persona_testbed.llm.types import Message

SYSTEM, USER = "system", "user"
_SECTION = re.compile(r"\[([a-z][a-z0-9_]*)\]")
_OLD_PLACEHOLDER = re.compile(r"(?<!\{)\{([_a-zA-Z][_a-zA-Z0-9]*)\}(?!\})")


@dataclass(frozen=True)
class TemplateSpec:
    """What one template may hold: its sections and placeholders, and what it must hold."""

    name: str
    fields: frozenset[str]
    required: frozenset[str] = frozenset()
    sections: tuple[str, ...] = (SYSTEM, USER)
    required_sections: tuple[str, ...] = (USER,)
    # Rendered messages lose surrounding whitespace (the bench's prompts always have; values
    # such as a model's answer may carry some).
    trim: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.name}.txt"


@dataclass(frozen=True)
class PromptTemplate:
    """One loaded template file: its text (for the digest) and its sections."""

    name: str
    origin: str  # the file, for error messages
    text: str
    sections: Mapping[str, string.Template]
    trim: bool = False

    def fields(self) -> set[str]:
        return {name for part in self.sections.values() for name in part.get_identifiers()}

    def has(self, section: str) -> bool:
        return section in self.sections

    def source(self, section: str) -> str:
        """The section's text as written, placeholders unfilled."""
        return self.sections[section].template

    def fill(self, section: str, **values: str) -> str:
        """The section with every placeholder filled; a missing value names the placeholder."""
        part = self.sections[section]
        try:
            return part.substitute(values)
        except KeyError:
            missing = sorted(set(part.get_identifiers()) - values.keys())
            raise InputError(f"{self.origin}: no value for ${', $'.join(missing)}") from None

    def messages(self, **values: str) -> list[Message]:
        """A system message (when the rendered `[system]` is not empty) and the user message."""
        # Imported here: the LLM layer itself reads templates (its re-ask prompt).
        from persona_testbed.llm import types

        system = self.fill(SYSTEM, **values) if self.has(SYSTEM) else ""
        user = self.fill(USER, **values)
        if self.trim:
            system, user = system.strip(), user.strip()
        messages = [types.Message(role="system", content=system)] if system else []
        return [*messages, types.Message(role="user", content=user)]


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _split_sections(text: str, origin: str, spec: TemplateSpec) -> dict[str, str]:
    parts: dict[str, list[str]] = {}
    current: str | None = None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the file's final line break ends its last line
    for number, line in enumerate(lines, start=1):
        marker = _SECTION.fullmatch(line.strip().lower())
        # Only the template's own section names open a section: other bracketed lines are text.
        if marker is not None and marker.group(1) in spec.sections:
            name = marker.group(1)
            if name in parts:
                raise InputError(f"{origin}:{number}: section [{name}] appears twice")
            current = name
            parts[current] = []
        elif current is None:
            if line.strip():
                raise InputError(
                    f"{origin}:{number}: text before the first section line "
                    f"({', '.join(f'[{s}]' for s in spec.sections)})"
                )
        else:
            parts[current].append(line)
    for name in spec.required_sections:
        if name not in parts:
            raise InputError(f"{origin}: no [{name}] section")
    return {name: "\n".join(lines) for name, lines in parts.items()}


def parse_template(text: str, origin: str, spec: TemplateSpec) -> PromptTemplate:
    """Split a template's text into sections and check its placeholders against `spec`."""
    for match in string.Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            raise InputError(
                f"{origin}:{_line_of(text, match.start())}: invalid placeholder "
                "(placeholders are $name; write a literal $ as $$)"
            )
    sections = {
        name: string.Template(part) for name, part in _split_sections(text, origin, spec).items()
    }
    template = PromptTemplate(spec.name, origin, text, sections, spec.trim)
    found = template.fields()
    unknown = sorted(found - spec.fields)
    if unknown:
        allowed = ", ".join(f"${f}" for f in sorted(spec.fields))
        raise InputError(f"{origin}: unknown placeholder ${unknown[0]} (allowed: {allowed})")
    missing = sorted(spec.required - found)
    if missing:
        hint = ""
        if any(m.group(1) == missing[0] for m in _OLD_PLACEHOLDER.finditer(text)):
            hint = f" ({{{missing[0]}}} is the old syntax: write ${missing[0]})"
        raise InputError(f"{origin}: missing placeholder ${missing[0]}{hint}")
    return template


def read_template(path: Path, spec: TemplateSpec) -> PromptTemplate:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the template ({exc})") from None
    return parse_template(text, str(path), spec)


def bundled_path(package: str) -> Path:
    """The `templates/` folder shipped in a stage's package (e.g. persona_testbed.census)."""
    return Path(str(files(package).joinpath("templates")))


def load_bundled(package: str, spec: TemplateSpec) -> PromptTemplate:
    """A template shipped with the package (a stage's fixed prompts)."""
    return read_template(bundled_path(package) / spec.file_name, spec)


def digest(templates: Iterable[PromptTemplate]) -> str:
    """A hash of the templates' names and texts: a changed prompt is a changed stage."""
    hasher = hashlib.sha256()
    for template in sorted(templates, key=lambda t: t.name):
        hasher.update(f"{template.name}\n{template.text}\n".encode())
    return hasher.hexdigest()[:16]

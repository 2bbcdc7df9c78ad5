"""Prompt template sets for DPF generation and the judge: a folder of text files.

A set holds `base.txt`, `critique.txt`, `revision.txt`, `judge.txt` (the user messages) and
optionally `<step>_system.txt`. Placeholders are `{name}`; `{{` and `}}` are literal braces.
Bundled sets: `paper` (Appendix B of Castricato et al., COLING 2025) and `subtle` (ours).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from persona_testbed.errors import InputError

STEPS = ("base", "critique", "revision", "judge")
ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset({"question"}),
    "critique": frozenset({"answer", "persona", "question"}),
    "revision": frozenset({"answer", "critique", "question", "persona"}),
    "judge": frozenset({"persona", "question", "answer_a", "answer_b"}),
}
# What each step cannot do without: checked over the step's system and user files together.
REQUIRED: dict[str, frozenset[str]] = {
    "base": frozenset({"question"}),
    "critique": frozenset({"answer", "persona", "question"}),
    "revision": frozenset({"answer", "critique"}),
    "judge": frozenset({"persona", "question", "answer_a", "answer_b"}),
}
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def bundled_templates_dir() -> Path:
    return Path(str(files("persona_testbed.preferences").joinpath("templates")))


def available_templates() -> list[str]:
    return sorted(p.name for p in bundled_templates_dir().iterdir() if (p / "base.txt").is_file())


def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in _TOKEN.finditer(text) if m.group(1)}


def fill(text: str, values: Mapping[str, str]) -> str:
    """Substitute `{name}` placeholders in one pass (values may hold braces of their own)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values[match.group(1)]

    return _TOKEN.sub(replace, text)


@dataclass(frozen=True)
class Template:
    user: str
    system: str | None = None

    def render(self, **values: str) -> tuple[str | None, str]:
        system = fill(self.system, values) if self.system is not None else None
        return system, fill(self.user, values)


@dataclass(frozen=True)
class TemplateSet:
    name: str
    path: Path
    base: Template
    critique: Template
    revision: Template
    judge: Template

    def step(self, name: str) -> Template:
        template: Template = getattr(self, name)
        return template

    @property
    def digest(self) -> str:
        """Hash of every template text: a changed template is a changed config."""
        digest = hashlib.sha256()
        for step in STEPS:
            template = self.step(step)
            digest.update(f"{step}\0{template.system or ''}\0{template.user}\0".encode())
        return digest.hexdigest()[:16]


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the template ({exc})") from None


def _load_step(folder: Path, step: str) -> Template:
    user_path = folder / f"{step}.txt"
    if not user_path.is_file():
        raise InputError(f"{user_path}: missing template file for the {step} step")
    system_path = folder / f"{step}_system.txt"
    user = _read(user_path)
    system = _read(system_path) if system_path.is_file() else None
    found: set[str] = set()
    for path, text in ((user_path, user), (system_path, system)):
        if text is None:
            continue
        names = placeholders(text)
        unknown = sorted(names - ALLOWED[step])
        if unknown:
            raise InputError(
                f"{path}: unknown placeholder {{{unknown[0]}}} "
                f"(allowed: {', '.join('{' + n + '}' for n in sorted(ALLOWED[step]))})"
            )
        found |= names
    missing = sorted(REQUIRED[step] - found)
    if missing:
        raise InputError(f"{user_path}: missing placeholder {{{missing[0]}}}")
    return Template(user=user, system=system)


def load_templates(name_or_dir: str | Path) -> TemplateSet:
    """A bundled set by name (`paper`, `subtle`) or a folder with the same files."""
    name = str(name_or_dir)
    # A bundled name wins over a same-named folder in the working directory.
    if "/" not in name and name in available_templates():
        folder = bundled_templates_dir() / name
    elif Path(name).is_dir():
        folder = Path(name)
    else:
        raise InputError(
            f"--templates {name_or_dir}: neither a bundled set "
            f"({', '.join(available_templates())}) nor a folder"
        )
    steps = {step: _load_step(folder, step) for step in STEPS}
    return TemplateSet(name=folder.name, path=folder, **steps)

"""Prompt template sets for DPF generation and the judge: a folder of template files.

A set holds `base.txt`, `critique.txt`, `revision.txt` and `judge.txt`, one per step, each with
an optional `[system]` and a `[user]` section and `$name` placeholders (the project's one
template format, `persona_testbed.templates`). Bundled sets: `paper` (the critique and revision
prompts of Appendix B of Castricato et al., "PERSONA: A Reproducible Testbed for Pluralistic
Alignment", COLING 2025), `subtle` and `brief` (ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from persona_testbed import templates
from persona_testbed.errors import InputError
from persona_testbed.templates import PromptTemplate, TemplateSpec

STEPS = ("base", "critique", "revision", "judge")
# Per step: the placeholders it may use, and (over its system and user sections together)
# those it cannot do without.
SPECS: dict[str, TemplateSpec] = {
    "base": TemplateSpec("base", frozenset({"question"}), frozenset({"question"})),
    "critique": TemplateSpec(
        "critique",
        frozenset({"answer", "persona", "question"}),
        frozenset({"answer", "persona", "question"}),
    ),
    "revision": TemplateSpec(
        "revision",
        frozenset({"answer", "critique", "question", "persona"}),
        frozenset({"answer", "critique"}),
    ),
    "judge": TemplateSpec(
        "judge",
        frozenset({"persona", "question", "answer_a", "answer_b"}),
        frozenset({"persona", "question", "answer_a", "answer_b"}),
    ),
}
PACKAGE = "persona_testbed.preferences"


def bundled_templates_dir() -> Path:
    return templates.bundled_path(PACKAGE)


def available_templates() -> list[str]:
    return sorted(p.name for p in bundled_templates_dir().iterdir() if (p / "base.txt").is_file())


@dataclass(frozen=True)
class TemplateSet:
    name: str
    path: Path
    base: PromptTemplate
    critique: PromptTemplate
    revision: PromptTemplate
    judge: PromptTemplate

    def step(self, name: str) -> PromptTemplate:
        template: PromptTemplate = getattr(self, name)
        return template

    @property
    def digest(self) -> str:
        """Hash of every template text: a changed template is a changed config."""
        return templates.digest(self.step(step) for step in STEPS)


def _load_step(folder: Path, step: str) -> PromptTemplate:
    spec = SPECS[step]
    path = folder / spec.file_name
    if not path.is_file():
        raise InputError(f"{path}: missing template file for the {step} step")
    old_system = folder / f"{step}_system.txt"
    if old_system.is_file():
        raise InputError(
            f"{old_system}: system prompts now go in the [system] section of {spec.file_name}"
        )
    return templates.read_template(path, spec)


def load_templates(name_or_dir: str | Path) -> TemplateSet:
    """A bundled set by name (`paper`, `subtle`, `brief`) or a folder with the same files."""
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


class _TemplatesSection(Protocol):
    """A stage config that names a template set (`templates:`)."""

    @property
    def templates(self) -> str: ...


def template_digest(config: _TemplatesSection) -> str:
    """The digest of the template set the config names: part of the stage fingerprint."""
    return load_templates(config.templates).digest

"""Method prompt templates: bundled files, overrides and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_testbed.bench.templates import TEMPLATE_FIELDS, TemplateSet, parse_template
from persona_testbed.errors import InputError


def test_bundled_templates_render_with_their_fields() -> None:
    templates = TemplateSet.load()
    assert set(templates.templates) == set(TEMPLATE_FIELDS)
    messages = templates["persona"].messages(persona="age: 40", question="Why $5?")
    assert [m.role for m in messages] == ["system", "user"]
    assert "age: 40" in messages[0].content
    assert "quote" in messages[0].content  # asks for subtle personalization
    assert messages[1].content == "Why $5?"
    (user,) = templates["no-persona"].messages(question="Q?")[-1:]
    assert user.content == "Q?"
    assert all("$persona" not in m.content for m in templates["no-persona"].messages(question="Q"))


def test_override_directory_replaces_one_template_and_changes_the_digest(tmp_path: Path) -> None:
    (tmp_path / "persona.txt").write_text("[user]\nAs $persona, answer: $question\n")
    bundled, custom = TemplateSet.load(), TemplateSet.load(tmp_path)
    assert custom["persona"].messages(persona="P", question="Q")[0].content == "As P, answer: Q"
    assert custom["critic"].text == bundled["critic"].text
    assert custom.digest() != bundled.digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[user]\n$question $income\n", "unknown placeholder $income"),
        ("[system]\nonly system\n", "no [user] section"),
        ("hello\n[user]\n$question\n", "text before the first"),
        ("[user]\ncosts $ 5\n", "invalid placeholder"),
        ("[user]\na\n[user]\nb\n", "appears twice"),
    ],
)
def test_bad_templates_name_the_file_and_problem(text: str, message: str) -> None:
    with pytest.raises(InputError, match=r"my\.txt") as error:
        parse_template("no-persona", text, "my.txt")
    assert message in str(error.value)


def test_templates_option_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be a directory"):
        TemplateSet.load(tmp_path / "missing")

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from persona_testbed.errors import InputError
from persona_testbed.llm import ChatRequest
from persona_testbed.preferences import (
    GenerationSettings,
    available_templates,
    clean_critique,
    extract_revision,
    load_templates,
    refine_answers,
)
from persona_testbed.preferences.templates import SPECS
from persona_testbed.templates import parse_template
from tests.preferences.helpers import scripted_client


def test_bundled_sets_load_and_paper_quotes_appendix_b() -> None:
    assert {"paper", "subtle"} <= set(available_templates())
    paper = load_templates("paper")
    critique = paper.critique.source("user")
    assert critique.startswith("Examine the COMPLETION: '$answer' in relation to the DEMOGRAPHIC")
    assert "Put yourself in the shoes of DEMOGRAPHIC." in critique
    assert "Format: EVALUATION: ... SUGGESTIONS: ..." in critique
    revision = paper.revision.source("user")
    assert "based on the CRITIQUE: '$critique'" in revision
    assert "If you make it longer you are a BAD CHATGPT." in revision
    assert load_templates("subtle").digest != paper.digest


_BASE = SPECS["base"]


def _copy_paper(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    shutil.copytree(load_templates("paper").path, folder)
    return folder


def test_user_folder_is_validated_with_the_file_named(tmp_path: Path) -> None:
    folder = _copy_paper(tmp_path)
    assert load_templates(folder).name == "mine"
    (folder / "critique.txt").write_text("[user]\nCritique $answer for $question.")
    with pytest.raises(InputError, match=r"mine/critique.txt: missing placeholder \$persona"):
        load_templates(folder)
    (folder / "critique.txt").write_text("[user]\n$persona $question $answer $mood")
    with pytest.raises(InputError, match=r"critique.txt: unknown placeholder \$mood"):
        load_templates(folder)
    # A folder in the old format ({name} placeholders, a separate system file) is told how.
    (folder / "critique.txt").write_text("[user]\n{persona} $question $answer")
    with pytest.raises(InputError, match=r"\{persona\} is the old syntax: write \$persona"):
        load_templates(folder)
    (folder / "critique_system.txt").write_text("Be kind.")
    with pytest.raises(InputError, match=r"critique_system.txt: system prompts now go in the"):
        load_templates(folder)
    (folder / "critique_system.txt").unlink()
    (folder / "critique.txt").unlink()
    with pytest.raises(InputError, match=r"critique.txt: missing template file"):
        load_templates(folder)
    with pytest.raises(InputError, match=r"--templates nonexistent: neither a bundled set"):
        load_templates("nonexistent")


def test_fill_substitutes_once_and_keeps_escaped_dollars() -> None:
    template = parse_template('[user]\n{"q": "$question", "cost": "$$5"}\n', "t.txt", _BASE)
    text = template.fill("user", question="is $answer {here}?")
    assert text == '{"q": "is $answer {here}?", "cost": "$5"}'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("REVISED PREFERENCE: Keep it short.\nDONE", "Keep it short."),
        ("Thinking...\nRevised preference: 'Quoted answer.'\nDONE.", "Quoted answer."),
        ("Just the answer.", "Just the answer."),
        ("REVISED PREFERENCE:\nDONE", ""),
    ],
)
def test_extract_revision(raw: str, expected: str) -> None:
    assert extract_revision(raw) == expected


def test_clean_critique_drops_the_done_line() -> None:
    assert clean_critique("EVALUATION: fine. SUGGESTIONS: none.\nDONE") == (
        "EVALUATION: fine. SUGGESTIONS: none."
    )


def test_refine_answers_feeds_the_critique_into_the_revision(tmp_path: Path) -> None:
    client, backend = scripted_client(tmp_path)
    personas = ["political views: Democrat", "political views: Republican"]
    questions = ["Should taxes rise?", "Should taxes fall?"]
    base = ["Maybe.", "Perhaps."]
    refined = refine_answers(
        client, personas, questions, base, load_templates("paper"),
        settings=GenerationSettings(max_tokens=40, temperature=0.0, seed=3),
    )  # fmt: skip
    assert [r.critique for r in refined] == [
        "EVALUATION: too generic for a Democrat. SUGGESTIONS: be concrete.",
        "EVALUATION: too generic for a Republican. SUGGESTIONS: be concrete.",
    ]
    assert refined[1].revision == f"tailored answer [{refined[1].critique}]"
    assert all(r.ok for r in refined)
    critique_requests: list[ChatRequest] = backend.calls[:2]
    assert all(r.max_tokens == 40 and r.seed == 3 for r in backend.calls)
    first_prompt = critique_requests[0].messages[-1].content
    assert "'Maybe.'" in first_prompt and "political views: Democrat" in first_prompt
    assert "Should taxes rise?" in first_prompt


def test_the_done_tail_is_stripped_exactly_as_the_regex_strips_it() -> None:
    import random

    from persona_testbed.preferences import dpf

    rng = random.Random(0)
    parts = ["DONE", " ", "\n", "x", ".", "_", "D", "ONE", "\t", "é", "!", "\u2003"]
    for _ in range(20_000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        assert dpf._without_done(text) == dpf._DONE_TAIL.sub("", text), repr(text)
    assert dpf.clean_critique("The critique.\nDONE") == "The critique."
    assert dpf.extract_revision("REVISED PREFERENCE: y_w\n\nDONE.") == "y_w"

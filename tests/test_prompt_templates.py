"""Every prompt is a template file (persona_testbed.templates), and moving a prompt there kept
the text sent to the model byte for byte (the prompts are response-cache keys).

The census and controversy prompts were Python constants: their old text and assembly are
copied here, once, as the reference. The bench and preferences templates changed format
(`{name}` files and separate system files became sectioned `$name` files): their rendered
messages are pinned by hashes computed with the old renderers before the change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from persona_testbed import templates
from persona_testbed.bench.templates import TEMPLATE_FIELDS, TemplateSet
from persona_testbed.census.llm_steps import fill_messages, judge_messages
from persona_testbed.errors import InputError
from persona_testbed.llm import Message
from persona_testbed.llm.structured import reask_message
from persona_testbed.preferences import load_templates
from persona_testbed.preferences.templates import STEPS
from persona_testbed.prompts.controversy import controversy_template, render_question
from persona_testbed.templates import TemplateSpec, parse_template

# --- The old constants (census/llm_steps.py and prompts/controversy.py before the move).
OLD_JUDGE_SYSTEM = (
    "You check synthetic person profiles built from U.S. census records for internal "
    "consistency. A profile is inconsistent only if some of its fields cannot all be true of one "
    "real person, for example a 6-year-old with a master's degree, a married toddler, or an "
    "income impossible for the listed age and job. Unusual but possible combinations are "
    "consistent. Answer with a JSON object: "
    '{"consistent": true or false, "reason": "one short sentence"}.'
)
OLD_FILL_SYSTEM = (
    "You write short, concrete details for a synthetic persona used in research on pluralistic "
    "alignment. Never contradict any field of the profile: age, sex, education, employment, "
    "occupation, industry, income, household and health fields are facts from the U.S. census. "
    "Write in the third person, without names, one sentence per field. Answer with a JSON "
    "object only."
)
OLD_FIELD_GUIDE = {
    "detailed job description": "one sentence (at most 25 words) on what this person does day to "
    "day (work, school, care or retirement), consistent with their employment status, "
    "occupation and industry",
    "defining quirks": "one distinctive habit or quirk, at most 15 words",
    "mannerisms": "one characteristic way of speaking or moving, at most 15 words",
    "personal time": "how they spend their free time, at most 15 words",
    "lifestyle": "their lifestyle in at most 6 words",
}
OLD_YES = "Yes: people with different values or backgrounds would answer it differently."
OLD_NO = "No: nearly everyone would give the same answer."
OLD_CONTROVERSY_SYSTEM = (
    "You sort questions for an opinion survey. Reply with the letter of your choice only."
)

# Values with the characters a template engine could trip on: $, braces, surrounding spaces.
PROFILE = "age: 45\nsex: Female\nnote: saves $5 a day {always}\n"
QUESTION = " Is $name {question} fair? "


def old_judge_messages(profile: str) -> list[Message]:
    user = f"Profile:\n{profile}\n\nIs this profile internally consistent?"
    return [Message(role="system", content=OLD_JUDGE_SYSTEM), Message(role="user", content=user)]


def old_fill_messages(profile: str, core_values: str, categories: tuple[str, ...]) -> list[Message]:
    attributes = ("detailed job description", *categories)
    key = {a: a.replace(" ", "_") for a in attributes}
    wanted = "\n".join(f"- {key[a]}: {OLD_FIELD_GUIDE[a]}" for a in attributes)
    keys = ", ".join(key[a] for a in attributes)
    user = (
        f"Profile:\n{profile}\ncore values: {core_values}\n\n"
        f"Write these fields:\n{wanted}\n\nReply with a JSON object with the keys {keys}."
    )
    return [Message(role="system", content=OLD_FILL_SYSTEM), Message(role="user", content=user)]


def old_controversy_messages(question: str, options: tuple[str, str]) -> list[Message]:
    body = (
        f"Question: {question}\n\n"
        "Would people with different values give different answers to this question?\n"
        f"A: {options[0]}\n"
        f"B: {options[1]}\n"
        "Answer with A or B."
    )
    return [
        Message(role="system", content=OLD_CONTROVERSY_SYSTEM),
        Message(role="user", content=body),
    ]


def test_census_prompts_render_as_the_old_constants_did() -> None:
    assert judge_messages(PROFILE) == old_judge_messages(PROFILE)
    for categories in [(), ("defining quirks", "lifestyle"), ("mannerisms", "personal time")]:
        new = fill_messages(PROFILE, "kindness, $thrift", categories)
        assert new == old_fill_messages(PROFILE, "kindness, $thrift", categories)


def test_controversy_prompt_and_options_render_as_the_old_constants_did() -> None:
    template = controversy_template()
    assert (template.fill("yes"), template.fill("no")) == (OLD_YES, OLD_NO)
    for options in [(OLD_YES, OLD_NO), (OLD_NO, OLD_YES)]:
        assert render_question(QUESTION, options) == old_controversy_messages(QUESTION, options)


def test_the_reask_message_renders_as_the_old_constant_did() -> None:
    error = "keys: field required {x} $y"
    old = (
        f"That reply could not be used ({error}). Reply again with only a JSON object "
        "that matches the requested schema."
    )
    assert reask_message(error) == old


# --- Pins of the templates that changed format, computed with the old renderers.
PIN_VALUES = {
    "question": "What should I cook tonight? Is $5 enough for {two}?",
    "persona": "age: 45\nsex: Female\ncore values: {kindness} & $thrift",
    "answer": "Pasta is cheap. {x} $y",
    "answer_a": "First answer {a}.",
    "answer_b": "Second answer $b.",
    "critique": "EVALUATION: too long. SUGGESTIONS: shorter.",
    "summary": "Likes cheap food; {budget}.",
    "attribute": "income",
    "value": "$20,000",
}
PINS = {
    "bench/critic": "07ffed8264f04db9",
    "bench/no-persona": "747c5b6fbb1c24a9",
    "bench/persona-cot": "137a06909a5b2ccc",
    "bench/persona-summary.summarize": "9f4c88b637b9a2ae",
    "bench/persona-summary": "f1c6f3e6e3f6cf5a",
    "bench/persona": "156ad3d86728471f",
    "bench/subtlety": "ab002111c860b6bc",
    "bench/summary-drop-judge": "4dc0ba2a0f86cc6e",
    "preferences/brief/base": "3a273dafcb65490f",
    "preferences/brief/critique": "1803cd5a0c90cba5",
    "preferences/brief/revision": "cc8179418ef3ed16",
    "preferences/brief/judge": "b720e94e2be9e8a1",
    "preferences/paper/base": "93bdfc60c110c539",
    "preferences/paper/critique": "ebc4ad2477cfe2f9",
    "preferences/paper/revision": "ed3252e5cca01e0a",
    "preferences/paper/judge": "b720e94e2be9e8a1",
    "preferences/subtle/base": "5630bd32d3a910cb",
    "preferences/subtle/critique": "2d49059057ac9879",
    "preferences/subtle/revision": "5b5b62b32f568a64",
    "preferences/subtle/judge": "b720e94e2be9e8a1",
}


def _pin(messages: list[Message]) -> str:
    pairs = [[m.role, m.content] for m in messages]
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def _values(template: templates.PromptTemplate) -> dict[str, str]:
    return {name: PIN_VALUES[name] for name in template.fields()}


def test_bench_and_preferences_templates_render_the_pinned_bytes() -> None:
    rendered: dict[str, str] = {}
    bench = TemplateSet.load()
    for name in TEMPLATE_FIELDS:
        rendered[f"bench/{name}"] = _pin(bench[name].messages(**_values(bench[name])))
    for set_name in ("brief", "paper", "subtle"):
        loaded = load_templates(set_name)
        for step in STEPS:
            template = loaded.step(step)
            rendered[f"preferences/{set_name}/{step}"] = _pin(
                template.messages(**_values(template))
            )
    assert rendered == PINS


# --- The mechanism itself.
SPEC = TemplateSpec("t", frozenset({"question", "persona"}), frozenset({"question"}))


def test_sections_are_the_exact_text_between_section_lines() -> None:
    text = "\n[system]\nBe brief.\n\n[user]\n  $question\n"
    template = parse_template(text, "t.txt", SPEC)
    assert template.fill("system") == "Be brief.\n"  # the blank line belongs to [system]
    # A bracketed line that names no section of the template is text.
    assert parse_template("[user]\n[example]\n$question", "t.txt", SPEC).fill(
        "user", question="Q"
    ) == ("[example]\nQ")
    assert template.messages(question="Q") == [
        Message(role="system", content="Be brief.\n"),
        Message(role="user", content="  Q"),
    ]
    trimmed = parse_template(text, "t.txt", TemplateSpec("t", SPEC.fields, trim=True))
    assert [m.content for m in trimmed.messages(question=" Q ")] == ["Be brief.", "Q"]
    # An empty system section sends no system message.
    assert parse_template("[system]\n[user]\n$question", "t.txt", SPEC).messages(question="Q") == [
        Message(role="user", content="Q")
    ]


def test_a_missing_value_names_the_file_and_the_placeholder() -> None:
    template = parse_template("[user]\n$question for $persona\n", "my/t.txt", SPEC)
    with pytest.raises(InputError, match=r"^my/t\.txt: no value for \$persona$"):
        template.messages(question="Q")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[user]\n$persona\n", r"t\.txt: missing placeholder \$question$"),
        ("[user]\n{question}\n", r"\{question\} is the old syntax: write \$question"),
        ("[user]\n$question $mood\n", r"t\.txt: unknown placeholder \$mood \(allowed:"),
        ("[user]\n$question\ncosts $ 5\n", r"t\.txt:3: invalid placeholder"),
        ("[notes]\n[user]\n$question\n", r"t\.txt:1: text before the first section line"),
        ("[system]\n$question\n", r"t\.txt: no \[user\] section"),
    ],
)
def test_bad_templates_fail_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_template(text, "t.txt", SPEC)


def test_the_digest_changes_with_any_template_text(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("[user]\n$question\n")
    first = templates.digest([templates.read_template(path, SPEC)])
    assert first == templates.digest([templates.read_template(path, SPEC)])
    path.write_text("[user]\n$question?\n")
    assert templates.digest([templates.read_template(path, SPEC)]) != first


def test_no_prompt_text_is_left_in_python_constants() -> None:
    """The modules that used to hold prompts now only load them (a guard against regressions:
    a long sentence to the model in a .py file would be outside every fingerprint)."""
    package = Path(templates.__file__).parent
    for module in ("census/llm_steps.py", "prompts/controversy.py", "llm/structured.py"):
        source = (package / module).read_text("utf-8")
        for sentence in (
            "You check synthetic person profiles",
            "You sort questions",
            "Yes: ",
            "That reply could not be used",
        ):
            assert sentence not in source, (module, sentence)

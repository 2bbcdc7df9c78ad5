"""The four answer-generation methods of PERSONA Bench (paper §5.1-5.3) and their parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from persona_testbed.errors import InputError


class Method(StrEnum):
    NO_PERSONA = "no-persona"  # baseline: the model never sees the persona
    PERSONA = "persona"  # sees the persona, gives only the answer
    PERSONA_COT = "persona-cot"  # reasons, then answers; only the answer is judged
    PERSONA_SUMMARY = "persona-summary"  # summarizes what matters, then answers


ALL_METHODS: tuple[Method, ...] = tuple(Method)


def parse_methods(text: str) -> tuple[Method, ...]:
    """`no-persona,persona` -> methods in the given order, without repeats."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError("--methods: give at least one method")
    methods: list[Method] = []
    for name in names:
        try:
            method = Method(name)
        except ValueError:
            known = ", ".join(m.value for m in Method)
            raise InputError(f"--methods: unknown method '{name}' (known: {known})") from None
        if method not in methods:
            methods.append(method)
    return tuple(methods)


# The last line that starts with "Answer:" (optionally bold or "Final answer:") opens the answer.
_ANSWER_LINE = re.compile(r"^[ \t>*#_]*(?:final[ \t]+)?answer[ \t]*\**[ \t]*:\**", re.I | re.M)
_REASONING_PREFIX = re.compile(r"^[ \t*#_]*reasoning[ \t]*\**[ \t]*:\**[ \t]*", re.I)

NO_ANSWER_LINE = "no 'Answer:' line; the whole output was judged"
EMPTY_ANSWER = "empty answer after 'Answer:'; the whole output was judged"


@dataclass(frozen=True)
class CotParse:
    reasoning: str | None
    answer: str
    error: str | None


def parse_cot(text: str) -> CotParse:
    """Split a chain-of-thought output into reasoning and answer.

    Without an `Answer:` line the whole output is judged as the answer (and the miss is
    recorded): the critic then sees any persona details the reasoning repeats, so a model that
    ignores the format is not rewarded for it.
    """
    matches = list(_ANSWER_LINE.finditer(text))
    if not matches:
        return CotParse(reasoning=None, answer=text.strip(), error=NO_ANSWER_LINE)
    last = matches[-1]
    answer = text[last.end() :].strip()
    reasoning = _REASONING_PREFIX.sub("", text[: last.start()].strip()).strip() or None
    if not answer:
        return CotParse(reasoning=reasoning, answer=text.strip(), error=EMPTY_ANSWER)
    return CotParse(reasoning=reasoning, answer=answer, error=None)

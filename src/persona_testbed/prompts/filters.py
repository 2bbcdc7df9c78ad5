"""The paper's rule filters (§3.2): drop prompts without a question mark or under five words,
plus exact duplicates (after case and whitespace folding), which PRISM contains."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class DropReason(StrEnum):
    EMPTY = "empty"
    NO_QUESTION_MARK = "no_question_mark"
    TOO_SHORT = "too_short"
    DUPLICATE = "duplicate"
    NOT_CONTROVERSIAL = "not_controversial"
    # The classifier put no mass on A/B in some order of the options: no verdict either way.
    CONTROVERSY_UNDECIDED = "controversy_undecided"


def word_count(text: str) -> int:
    return len(text.split())


def normalize(text: str) -> str:
    """The form two prompts share when they are duplicates: case and spacing folded."""
    return " ".join(text.casefold().split())


def rule_drop_reasons(texts: Sequence[str], min_words: int = 5) -> list[DropReason | None]:
    """Why each prompt fails the rule filters (the first rule it fails), or None if it passes.

    Only prompts that pass the other rules count for duplicates: the first one is kept.
    """
    seen: set[str] = set()
    reasons: list[DropReason | None] = []
    for text in texts:
        key = normalize(text)
        if not key:
            reasons.append(DropReason.EMPTY)
        elif "?" not in text:
            reasons.append(DropReason.NO_QUESTION_MARK)
        elif word_count(text) < min_words:
            reasons.append(DropReason.TOO_SHORT)
        elif key in seen:
            reasons.append(DropReason.DUPLICATE)
        else:
            seen.add(key)
            reasons.append(None)
    return reasons

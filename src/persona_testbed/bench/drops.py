"""Which persona attributes a `persona-summary` summary drops (paper §5.3, Fig. 11).

For each summary and each attribute the persona has, the attribute counts as kept when the
summary names its value (or a synonym from `data/attribute_terms.yaml`) or talks about the
attribute itself ("their income", "their faith"); otherwise it was dropped. An optional LLM judge
does the matching instead (one yes/no choice per summary and attribute).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import polars as pl
import yaml

from persona_testbed.bench.templates import TemplateSet
from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import LLMClient

_NUMBER_SEPARATOR = re.compile(r"(?<=\d)[,_](?=\d{3})")
_NON_WORD = re.compile(r"[^0-9a-z]+")

# Words too common to show that a free-text value was kept.
STOPWORDS = frozenset(
    """a an and are as at be by for from has have in is it its of on or the to with without
    who whom whose this that these those their they them than then very not no yes only other
    some more most less least into over under about after before being been was were will
    would could should can may might also just like such each every any all both either
    spends time enjoys often always usually""".split()  # noqa: SIM905
)

DECADE_WORDS = {
    10: "teens",
    20: "twenties",
    30: "thirties",
    40: "forties",
    50: "fifties",
    60: "sixties",
    70: "seventies",
    80: "eighties",
    90: "nineties",
}


def normalize(text: str) -> str:
    """Lower case, thousands separators dropped, every non-alphanumeric run one space, padded
    with spaces so `" term "` finds whole words."""
    folded = _NUMBER_SEPARATOR.sub("", text.casefold().replace("'", ""))
    return " " + " ".join(_NON_WORD.sub(" ", folded).split()) + " "


def _contains(haystack: str, term: str) -> bool:
    needle = normalize(term)
    return needle.strip() != "" and needle in haystack


@dataclass(frozen=True)
class AttributeTerms:
    concept: tuple[str, ...]
    values: Mapping[str, tuple[str, ...]]


@cache
def attribute_terms() -> dict[str, AttributeTerms]:
    text = (resources.files("persona_testbed.bench") / "data" / "attribute_terms.yaml").read_text(
        "utf-8"
    )
    raw: dict[str, Any] = yaml.safe_load(text)
    table: dict[str, AttributeTerms] = {}
    for attribute, entry in raw.items():
        values = {
            str(value).casefold(): tuple(str(w) for w in words)
            for value, words in (entry.get("values") or {}).items()
        }
        table[attribute] = AttributeTerms(
            concept=tuple(str(w) for w in entry.get("concept") or ()), values=values
        )
    return table


# Nouns that name the persona itself, so a life-stage adjective before one describes the
# persona ("a young woman"), not someone else ("young children", "an older sibling").
PERSON_NOUNS = (
    "adult", "person", "man", "woman", "individual", "professional", "worker", "reader",
    "user", "voter", "citizen", "resident", "guy", "lady", "gentleman",
)  # fmt: skip
# Phrases that talk about the persona's own age without giving it ("at any age" does not).
AGE_CONCEPT = (
    "their age", "his age", "her age", "your age", "personas age", "users age", "own age",
    "age group", "age bracket", "life stage", "stage of life", "someone their age",
)  # fmt: skip


def _described(adjectives: tuple[str, ...]) -> list[str]:
    return [f"{adjective} {noun}" for adjective in adjectives for noun in PERSON_NOUNS]


def age_terms(age: int) -> list[str]:
    """Phrases that say this persona's age: the number in an age phrase ("34 year old", "aged
    34"), its decade ("40s", "forties"), and life-stage words that describe the persona itself.

    Bare "young", "older", "age" or "years old" are not enough: "young children", "an older
    sibling", "at any age" and "a 3-year-old son" say nothing about the persona's age."""
    n = str(age)
    terms = [
        f"{n} year old", f"{n} years old", f"{n} yo", f"{n} years of age", f"aged {n}",
        f"age {n}", f"age of {n}", f"at {n}", f"is {n}", f"turning {n}", f"turned {n}",
    ]  # fmt: skip
    decade = (age // 10) * 10
    if decade in DECADE_WORDS:
        terms += [f"{decade}s", DECADE_WORDS[decade]]
    if age < 13:
        terms += ["child", "kid", "young child", "boy", "girl", "elementary school"]
    elif age < 18:
        terms += ["teen", "teenager", "adolescent", "high schooler"]
    elif age < 30:
        terms += ["young adult", "twentysomething", "early career", *_described(("young",))]
    elif 40 <= age < 65:
        terms += ["middle aged", "midlife", *_described(("middle aged",))]
    elif age >= 65:
        terms += [
            "senior citizen", "seniors", "retiree", "retirees", "in retirement",
            *_described(("older", "elderly", "senior", "aging", "retired")),
        ]  # fmt: skip
    return [*terms, *AGE_CONCEPT]


def _content_words(value: str) -> list[str]:
    return [w for w in normalize(value).split() if len(w) >= 4 and w not in STOPWORDS]


def _stem(word: str) -> str:
    # A crude stem: enough for "restoring"/"restores", "gardening"/"garden".
    return word[:5] if len(word) > 5 else word


def _free_text_match(value: str, summary_norm: str) -> bool:
    if _contains(summary_norm, value):
        return True
    words = _content_words(value)
    if not words:
        return False
    summary_stems = {_stem(w) for w in summary_norm.split()}
    found = sum(_stem(w) in summary_stems for w in words)
    return found >= max(1, math.ceil(len(words) / 2))


def attribute_mentioned(attribute: str, value: object, summary: str) -> bool:
    """Does `summary` keep this attribute of the persona (its value or the attribute itself)?"""
    text = normalize(summary)
    terms = attribute_terms().get(attribute)
    if terms is not None and any(_contains(text, word) for word in terms.concept):
        return True
    if attribute == "age":
        try:
            age = int(str(value))
        except ValueError:
            return _free_text_match(str(value), text)
        return any(_contains(text, word) for word in age_terms(age))
    value_text = str(value)
    if terms is not None:
        words = terms.values.get(value_text.strip().casefold())
        if words is not None:
            return any(_contains(text, word) for word in words)
    return _free_text_match(value_text, text)


MENTION_SCHEMA = {
    "model": pl.String,
    "pair_id": pl.String,
    "sample_index": pl.Int64,
    "attribute": pl.String,
    "value": pl.String,
    "kept": pl.Boolean,
    "matcher": pl.String,
    "p_kept": pl.Float64,
}


# Mention rows per batch: a row is a Python dict (and, with a judge, a request) only until its
# batch becomes a frame. A job has one row per summary and attribute (up to 33 a summary): as
# dicts at once they took hundreds of MB at 8,000 summaries (docs/benchmarks.md).
MENTION_BATCH_ROWS = 10_000


def summary_mentions(
    summaries: pl.DataFrame,
    pairs: pl.DataFrame,
    *,
    judge: LLMClient | None = None,
    templates: TemplateSet | None = None,
    batch_rows: int = MENTION_BATCH_ROWS,
) -> pl.DataFrame:
    """One row per (summary, attribute the persona has): was the attribute kept?

    `summaries` has model, pair_id, sample_index, summary. With a `judge`, an LLM decides each
    (one yes/no choice); where it puts no probability on Yes/No the lexical match decides and
    the row says so. Rows are made `batch_rows` at a time (the batches change no row).
    """
    persona = pairs.select("pair_id", *ATTRIBUTES)
    frames = [pl.DataFrame(schema=MENTION_SCHEMA)]
    batch: list[dict[str, Any]] = []
    for row in summaries.join(persona, on="pair_id").iter_rows(named=True):
        summary = row["summary"] or ""
        for attribute in ATTRIBUTES:
            value = row[attribute]
            if value is None or str(value).strip() == "":
                continue
            batch.append(
                {
                    "model": row["model"],
                    "pair_id": row["pair_id"],
                    "sample_index": row["sample_index"],
                    "attribute": attribute,
                    "value": str(value),
                    "kept": attribute_mentioned(attribute, value, summary),
                    "matcher": "lexical",
                    "p_kept": None,
                    "summary": summary,
                }
            )
        if len(batch) >= batch_rows:
            frames.append(_mention_frame(batch, judge, templates))
            batch = []
    if batch:
        frames.append(_mention_frame(batch, judge, templates))
    return pl.concat(frames)


def _mention_frame(
    rows: list[dict[str, Any]], judge: LLMClient | None, templates: TemplateSet | None
) -> pl.DataFrame:
    """The MENTION_SCHEMA frame of `rows` (lexical matches), the judge deciding where given."""
    if judge is not None:
        if templates is None:
            raise ValueError("an LLM drop judge needs the templates")
        template = templates["summary-drop-judge"]
        choices = judge.choose_batch(
            [
                (
                    template.messages(
                        summary=r["summary"], attribute=r["attribute"], value=r["value"]
                    ),
                    ("Yes", "No"),
                )
                for r in rows
            ],
            description="summary attribute checks",
        )
        for r, choice in zip(rows, choices, strict=True):
            if not choice.undecided:
                # "llm (constrained)": a Yes/No answer from an endpoint without log-probabilities.
                matcher = "llm" if choice.method == "logprobs" else "llm (constrained)"
                r["kept"], r["matcher"], r["p_kept"] = (
                    choice.probs[0] > 0.5,
                    matcher,
                    choice.probs[0],
                )
            else:
                r["matcher"] = "lexical (no yes/no from the judge)"
    for r in rows:
        del r["summary"]
    return pl.DataFrame(rows, schema=MENTION_SCHEMA)

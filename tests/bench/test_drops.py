"""Summary attribute drops: lexical matching with synonyms, the table, the LLM matcher."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.bench.drops import attribute_mentioned, summary_mentions
from persona_testbed.bench.metrics import Streams, drops_table
from persona_testbed.bench.templates import TemplateSet
from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import ChatRequest

from .conftest import scripted_client


@pytest.mark.parametrize(
    ("attribute", "value", "summary", "kept"),
    [
        ("sex", "Female", "She wants a quick answer.", True),
        ("sex", "Female", "They want a quick answer; there is no mention.", False),
        ("sex", "Male", "The theme is cost.", False),  # "he" inside "the"/"theme" is no match
        ("age", 67, "A retiree in their sixties.", True),
        ("age", 67, "A 67-year-old reader.", True),
        ("age", 34, "Works in sales.", False),
        ("political views", "Republican", "Leans GOP.", True),
        ("political views", "Democrat", "Votes in every election.", True),  # concept word
        ("religion", "Nothing in particular", "Not religious at all.", True),
        ("religion", "Catholic", "Goes to Mass on Sundays.", True),
        ("religion", "Jewish", "Likes hiking.", False),
        ("income", "24720", "Earns about $24,720 a year.", True),
        ("personal time", "Spends free time restoring old furniture", "Restores furniture.", True),
        ("personal time", "Spends free time restoring old furniture", "Likes cooking.", False),
        ("hearing difficulty", "Yes", "Is hard of hearing.", True),
        ("marital status", "Widowed", "Lost a spouse years ago; a widow.", True),
        ("race", "Hispanic or Latino", "A Latina nurse.", True),
    ],
)
def test_attribute_mentioned(attribute: str, value: object, summary: str, kept: bool) -> None:
    assert attribute_mentioned(attribute, value, summary) is kept


def _pairs() -> pl.DataFrame:
    rows = []
    for i, sex in enumerate(["Female", "Male"]):
        row: dict[str, object] = dict.fromkeys(ATTRIBUTES)
        row.update({"pair_id": f"p{i}|q", "sex": sex, "religion": "Catholic", "age": 50})
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def test_drop_table_counts_only_personas_that_have_the_attribute(tmp_path: Path) -> None:
    summaries = pl.DataFrame(
        {
            "model": ["m"] * 4,
            "pair_id": ["p0|q", "p0|q", "p1|q", "p1|q"],
            "sample_index": [0, 1, 0, 1],
            "summary": ["She is Catholic.", "She cares.", "A Catholic man.", "Cost matters."],
        }
    )
    mentions = summary_mentions(summaries, _pairs())
    assert set(mentions.get_column("attribute")) == {"sex", "religion", "age"}
    table = drops_table(mentions, Streams(0))
    rates = dict(zip(table["attribute"], table["drop_rate"], strict=True))
    assert rates == {"age": 1.0, "religion": 0.5, "sex": 0.25}
    assert set(table["summaries"]) == {4}


def test_llm_matcher_decides_and_falls_back_when_it_cannot(tmp_path: Path) -> None:
    def judge_script(request: ChatRequest) -> tuple[str, dict[str, float]]:
        content = request.messages[-1].content
        if "FACT: age" in content:
            return ("Yes", {"Yes": 0.9, "No": 0.1})  # the judge says age is implied
        if "FACT: religion" in content:
            return ("?", {"?": 1.0})  # no yes/no: lexical fallback
        return ("No", {"Yes": 0.2, "No": 0.8})

    judge = scripted_client(judge_script, "scripted:judge", tmp_path / "c.db")
    summaries = pl.DataFrame(
        {"model": ["m"], "pair_id": ["p0|q"], "sample_index": [0], "summary": ["She is Catholic."]}
    )
    mentions = summary_mentions(summaries, _pairs(), judge=judge, templates=TemplateSet.load())
    by_attribute = {r["attribute"]: r for r in mentions.iter_rows(named=True)}
    assert by_attribute["age"]["kept"] is True and by_attribute["age"]["matcher"] == "llm"
    assert by_attribute["sex"]["kept"] is False  # the judge overrules the lexical match
    assert by_attribute["religion"]["kept"] is True
    assert by_attribute["religion"]["matcher"].startswith("lexical")


def test_mentions_made_in_batches_are_the_same_rows(tmp_path: Path) -> None:
    def judge_script(request: ChatRequest) -> tuple[str, dict[str, float]]:
        kept = "FACT: age" in request.messages[-1].content
        return ("Yes", {"Yes": 0.9, "No": 0.1}) if kept else ("No", {"Yes": 0.2, "No": 0.8})

    judge = scripted_client(judge_script, "scripted:judge", tmp_path / "c.db")
    summaries = pl.DataFrame(
        {
            "model": ["m"] * 4,
            "pair_id": ["p0|q", "p0|q", "p1|q", "p1|q"],
            "sample_index": [0, 1, 0, 1],
            "summary": ["She is Catholic.", "She cares.", "A Catholic man.", "Cost matters."],
        }
    )
    templates = TemplateSet.load()
    whole = summary_mentions(summaries, _pairs(), judge=judge, templates=templates)
    for batch_rows in (1, 2, 5):
        batched = summary_mentions(
            summaries, _pairs(), judge=judge, templates=templates, batch_rows=batch_rows
        )
        assert batched.equals(whole)
    assert summary_mentions(summaries.clear(), _pairs()).schema == whole.schema

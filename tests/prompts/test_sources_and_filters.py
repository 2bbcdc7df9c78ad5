from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_testbed.errors import InputError
from persona_testbed.prompts import (
    DropReason,
    read_demo,
    read_prism,
    read_questions,
    rule_drop_reasons,
)
from tests.prompts.helpers import PRISM_FIXTURE


def test_rule_filters_give_the_first_failing_rule() -> None:
    texts = [
        "Should the voting age be lowered to sixteen?",
        "Tell me a story about a brave dragon",  # no question mark
        "Is it good?",  # three words
        "should the voting age be  lowered to sixteen?",  # duplicate up to case and spacing
        "   ",
        "Should the voting age be raised to twenty one?",
    ]
    assert rule_drop_reasons(texts, min_words=5) == [
        None,
        DropReason.NO_QUESTION_MARK,
        DropReason.TOO_SHORT,
        DropReason.DUPLICATE,
        DropReason.EMPTY,
        None,
    ]
    # The word limit is a parameter: with 3 words allowed, "Is it good?" passes.
    assert rule_drop_reasons(["Is it good?"], min_words=3) == [None]


def test_a_dropped_prompt_does_not_count_as_the_original_of_a_duplicate() -> None:
    reasons = rule_drop_reasons(["Why?", "Why?", "Why is the sky blue today?"], min_words=5)
    assert reasons == [DropReason.TOO_SHORT, DropReason.TOO_SHORT, None]


def test_prism_fixture_reads_one_prompt_per_conversation() -> None:
    frame = read_prism(PRISM_FIXTURE)
    lines = PRISM_FIXTURE.read_text().splitlines()
    assert len(frame) == len(lines)
    first = json.loads(lines[0])
    row = frame.row(0, named=True)
    assert row["prompt_id"] == f"prism-{first['conversation_id']}"
    assert row["source_id"] == first["conversation_id"]
    assert row["text"] == first["opening_prompt"]
    assert row["conversation_type"] == first["conversation_type"]
    assert row["source"] == "prism" and row["topic_tag"] is None


def test_prism_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "conversations.jsonl"
    good = json.dumps({"conversation_id": "c1", "opening_prompt": "Is it fair to ask this?"})
    bad.write_text(good + "\n{not json\n")
    with pytest.raises(InputError, match=r"conversations.jsonl: line 2: not valid JSON"):
        read_prism(bad)
    bad.write_text(good + "\n" + json.dumps({"conversation_id": "c2"}) + "\n")
    with pytest.raises(InputError, match=r"line 2: missing field 'opening_prompt'"):
        read_prism(bad)
    bad.write_text(good + "\n" + good + "\n")
    with pytest.raises(InputError, match=r"duplicate id 'c1'"):
        read_prism(bad)
    with pytest.raises(InputError, match=r"nope.jsonl: not found"):
        read_prism(tmp_path / "nope.jsonl")


def test_prism_datasets_copy_reads_like_the_jsonl(tmp_path: Path) -> None:
    import datasets

    records = [json.loads(line) for line in PRISM_FIXTURE.read_text().splitlines()]
    copy = datasets.DatasetDict({"train": datasets.Dataset.from_list(records)})
    copy.save_to_disk(str(tmp_path / "prism_hf"))
    from_hf = read_prism(tmp_path / "prism_hf")
    assert from_hf.equals(read_prism(PRISM_FIXTURE))


def test_question_csv_with_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "qs.csv"
    path.write_text('qid,question,theme\n7,"Is it fair to tax sugar, do you think?",health\n')
    frame = read_questions(path, text_column="question", id_column="qid", topic_column="theme")
    assert frame.row(0, named=True) == {
        "prompt_id": "questions-7",
        "text": "Is it fair to tax sugar, do you think?",
        "source": "questions",
        "source_id": "7",
        "topic_tag": "health",
        "conversation_type": None,
    }
    with pytest.raises(InputError, match=r"qs.csv: no text column 'text' \(columns: qid"):
        read_questions(path)


def test_question_jsonl_without_ids_numbers_rows(tmp_path: Path) -> None:
    path = tmp_path / "qs.jsonl"
    path.write_text("\n".join(json.dumps({"q": f"Question {i} is it?"}) for i in range(3)))
    frame = read_questions(path, text_column="q")
    assert frame["prompt_id"].to_list() == ["questions-00001", "questions-00002", "questions-00003"]
    assert frame["source_id"].to_list() == [None, None, None]


def test_bundled_demo_set_is_large_tagged_and_passes_the_rule_filters() -> None:
    demo = read_demo()
    assert len(demo) >= 150
    topics = demo["topic_tag"].value_counts()
    assert len(topics) >= 12 and (topics["count"] >= 10).all()
    assert demo["prompt_id"].n_unique() == len(demo)
    assert all(reason is None for reason in rule_drop_reasons(demo["text"].to_list()))

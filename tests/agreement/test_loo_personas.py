"""Leave-one-out persona pairs: real personas, seeded draws, attributes that do not apply."""

from __future__ import annotations

import polars as pl
import pytest

from persona_testbed.agreement.loo_personas import build_pairs, card, choose_attributes
from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.errors import InputError

from .helpers import personas_frame


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_pairs_differ_by_exactly_the_left_out_attribute() -> None:
    personas = personas_frame(12)
    pairs = build_pairs(personas, ["religion", "age"], pairs=5, seed=1)
    assert [p.attribute for p in pairs] == ["religion"] * 5 + ["age"] * 5
    for pair in pairs:
        without, with_ = _lines(pair.persona_without), _lines(pair.persona_with)
        assert len(without) == 3 and len(with_) == 4
        assert set(without) < set(with_)
        (added,) = set(with_) - set(without)
        assert added == f"{pair.attribute}: {pair.attribute_value}"
        assert pair.attribute not in pair.context_attributes
        # Cards follow Appendix A order.
        names = [line.split(":")[0] for line in with_]
        assert names == sorted(names, key=ATTRIBUTES.index)
        source = personas.filter(pl.col("persona_id") == pair.source_persona_id).row(0, named=True)
        assert pair.persona_with == card(source, (*pair.context_attributes, pair.attribute))
    # Each pair of an attribute comes from a different persona.
    assert len({p.source_persona_id for p in pairs[:5]}) == 5


def test_pairs_are_seeded() -> None:
    personas = personas_frame(12)
    first = build_pairs(personas, ["sex"], pairs=4, seed=7)
    assert first == build_pairs(personas, ["sex"], pairs=4, seed=7)
    assert first != build_pairs(personas, ["sex"], pairs=4, seed=8)
    # Adding an attribute does not change another attribute's pairs.
    assert build_pairs(personas, ["age", "sex"], pairs=4, seed=7)[4:] == first


def test_attribute_that_rarely_applies_uses_only_personas_it_applies_to() -> None:
    personas = personas_frame(12)  # disability applies to personas 0, 4 and 8
    pairs = build_pairs(personas, ["disability"], pairs=5, seed=0)
    assert sorted(p.source_persona_id for p in pairs) == ["p000", "p004", "p008"]
    for pair in pairs:
        assert "None" not in pair.persona_with
        # Context attributes are drawn among those that apply to the persona.
        assert all(": " in line and line.split(": ", 1)[1] for line in _lines(pair.persona_with))


def test_choose_attributes_by_name_count_or_all() -> None:
    personas = personas_frame(8)
    assert choose_attributes(personas, names=["religion", "age"]) == ["age", "religion"]
    sample = choose_attributes(personas, count=4, seed=3)
    assert len(sample) == 4 and sample == sorted(sample, key=ATTRIBUTES.index)
    assert sample == choose_attributes(personas, count=4, seed=3)
    assert choose_attributes(personas) == list(ATTRIBUTES)


def test_choose_attributes_errors() -> None:
    personas = personas_frame(8).with_columns(pl.lit(None, dtype=pl.String).alias("fertility"))
    with pytest.raises(InputError, match="'politics': not a persona attribute"):
        choose_attributes(personas, names=["politics"])
    with pytest.raises(InputError, match="'fertility': no persona has it"):
        choose_attributes(personas, names=["fertility"])
    assert "fertility" not in choose_attributes(personas)

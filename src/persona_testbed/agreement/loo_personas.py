"""Leave-one-out persona pairs (paper §4.1): P = 3 attributes of a real persona, P+a = the same
3 plus the left-out attribute a, taken from the same persona.

An attribute applies to a persona when its value is present (not None, not empty). For
attribute a only personas to whom a applies are drawn (as the paper did for "disability type":
only personas with a disability), and the 3 context attributes are drawn among the attributes
that apply to that persona, so neither card ever shows "not applicable".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from persona_testbed.contracts import ATTRIBUTES, Persona
from persona_testbed.errors import InputError
from persona_testbed.seeding import child_rng

CONTEXT_SIZE = 3


@dataclass(frozen=True)
class LooPair:
    """One (P, P+a) pair; the texts are canonical persona cards in Appendix A order."""

    pair_id: str
    attribute: str
    pair_index: int
    source_persona_id: str
    context_attributes: tuple[str, ...]
    attribute_value: str
    persona_without: str
    persona_with: str

    def as_row(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "attribute": self.attribute,
            "pair_index": self.pair_index,
            "source_persona_id": self.source_persona_id,
            "context_attributes": list(self.context_attributes),
            "attribute_value": self.attribute_value,
            "persona_without": self.persona_without,
            "persona_with": self.persona_with,
        }


def applies(value: Any) -> bool:
    """An attribute applies when it has a value ("not applicable" is stored as None)."""
    return value is not None and str(value).strip() != ""


def card(row: Mapping[str, Any], attributes: Sequence[str]) -> str:
    """The persona card showing only `attributes` (canonical text form, Appendix A order)."""
    return Persona.from_row({name: row[name] for name in attributes}).to_text()


def _eligible(rows: Sequence[Mapping[str, Any]], attribute: str, context_size: int) -> list[int]:
    return [
        index
        for index, row in enumerate(rows)
        if applies(row.get(attribute))
        and sum(applies(row.get(name)) for name in ATTRIBUTES if name != attribute) >= context_size
    ]


def check_personas(personas: pl.DataFrame, source: str) -> None:
    missing = [name for name in ("persona_id", *ATTRIBUTES) if name not in personas.columns]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(f"{source}: missing column(s) {shown}")
    if personas.height == 0:
        raise InputError(f"{source}: no personas")


def eligible_counts(personas: pl.DataFrame, context_size: int = CONTEXT_SIZE) -> dict[str, int]:
    """Per attribute, how many personas can give a pair for it."""
    rows = personas.to_dicts()
    return {name: len(_eligible(rows, name, context_size)) for name in ATTRIBUTES}


def choose_attributes(
    personas: pl.DataFrame,
    *,
    names: Sequence[str] | None = None,
    count: int | None = None,
    seed: int = 0,
    context_size: int = CONTEXT_SIZE,
) -> list[str]:
    """The attributes to study, in Appendix A order: `names` as given (checked), else a seeded
    sample of `count` among those at least one persona can give a pair for, else all of those."""
    counts = eligible_counts(personas, context_size)
    if names:
        unknown = [name for name in names if name not in ATTRIBUTES]
        if unknown:
            raise InputError(
                f"--attribute {unknown[0]!r}: not a persona attribute "
                f"(known: {', '.join(ATTRIBUTES)})"
            )
        empty = [name for name in names if counts[name] == 0]
        if empty:
            raise InputError(
                f"--attribute {empty[0]!r}: no persona has it together with "
                f"{context_size} other attributes"
            )
        return [name for name in ATTRIBUTES if name in set(names)]
    usable = [name for name in ATTRIBUTES if counts[name] > 0]
    if not usable:
        raise InputError(f"personas: none has {context_size + 1} attributes that apply")
    if count is None or count >= len(usable):
        return usable
    picked = child_rng(seed, "loo-attributes").choice(len(usable), size=count, replace=False)
    return [usable[i] for i in sorted(picked)]


def build_pairs(
    personas: pl.DataFrame,
    attributes: Sequence[str],
    *,
    pairs: int,
    seed: int = 0,
    context_size: int = CONTEXT_SIZE,
) -> list[LooPair]:
    """Up to `pairs` pairs per attribute, each from a different real persona (fewer when fewer
    personas qualify). Draws are seeded per attribute: adding an attribute changes no other."""
    rows = personas.to_dicts()
    built: list[LooPair] = []
    for attribute in attributes:
        eligible = _eligible(rows, attribute, context_size)
        take = min(pairs, len(eligible))
        chosen = child_rng(seed, "loo-personas", attribute).choice(
            len(eligible), size=take, replace=False
        )
        context_rng = child_rng(seed, "loo-context", attribute)
        for pair_index, position in enumerate(chosen):
            row = rows[eligible[int(position)]]
            candidates = [n for n in ATTRIBUTES if n != attribute and applies(row.get(n))]
            drawn = context_rng.choice(len(candidates), size=context_size, replace=False)
            context = tuple(candidates[i] for i in sorted(drawn))
            built.append(
                LooPair(
                    pair_id=f"loo-{attribute.replace(' ', '_')}-{pair_index:03d}",
                    attribute=attribute,
                    pair_index=pair_index,
                    source_persona_id=str(row["persona_id"]),
                    context_attributes=context,
                    attribute_value=str(row[attribute]),
                    persona_without=card(row, context),
                    persona_with=card(row, (*context, attribute)),
                )
            )
    return built

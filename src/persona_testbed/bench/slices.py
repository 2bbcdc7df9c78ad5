"""Slices of the bench by persona attribute: `--slice "sex=Female & political views=Republican"`.

Grammar: clauses joined by `&`; a clause is `ATTRIBUTE=VALUE` or `ATTRIBUTE!=VALUE`. Attribute
names are the paper's (Appendix A, spaces allowed) or `age bracket`; values are compared as text,
ignoring case and surrounding spaces. A persona without the attribute never equals a value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from persona_testbed.contracts import AGE_BRACKET, ATTRIBUTES, HEADLINE_SLICES, age_bracket_expr
from persona_testbed.errors import InputError

SLICE_ATTRIBUTES: tuple[str, ...] = (*ATTRIBUTES, AGE_BRACKET)

# Reported for every run (the examples plus the other census headline attributes).
DEFAULT_SLICE_ATTRIBUTES: tuple[str, ...] = HEADLINE_SLICES

_CLAUSE = re.compile(r"^(?P<attribute>[^=!]+?)\s*(?P<op>!=|=)\s*(?P<value>.*)$")

Operator = Literal["=", "!="]


@dataclass(frozen=True)
class SliceClause:
    attribute: str
    op: Operator
    value: str

    def expr(self) -> pl.Expr:
        column = pl.col(self.attribute).cast(pl.String).str.strip_chars().str.to_lowercase()
        target = self.value.strip().lower()
        return column.eq_missing(target) if self.op == "=" else column.ne_missing(target)

    def __str__(self) -> str:
        return f"{self.attribute}{self.op}{self.value}"


@dataclass(frozen=True)
class SliceFilter:
    """A user-defined intersection of attribute conditions."""

    text: str
    clauses: tuple[SliceClause, ...]

    @property
    def label(self) -> str:
        return " & ".join(str(c) for c in self.clauses)

    def expr(self) -> pl.Expr:
        expression = self.clauses[0].expr()
        for clause in self.clauses[1:]:
            expression = expression & clause.expr()
        return expression


def _canonical_attribute(name: str) -> str | None:
    folded = " ".join(name.split()).casefold()
    for attribute in SLICE_ATTRIBUTES:
        if attribute.casefold() == folded:
            return attribute
    return None


def parse_slice(text: str) -> SliceFilter:
    """Parse one --slice value; a clear error names the bad clause or unknown attribute."""
    if not text.strip():
        raise InputError('--slice: empty filter (use e.g. "sex=Female & religion=Catholic")')
    clauses: list[SliceClause] = []
    for raw in text.split("&"):
        part = raw.strip()
        match = _CLAUSE.match(part)
        if not part or match is None:
            raise InputError(
                f"--slice '{text}': malformed clause '{part}' (expected ATTRIBUTE=VALUE or "
                "ATTRIBUTE!=VALUE, joined by &)"
            )
        attribute = _canonical_attribute(match["attribute"])
        if attribute is None:
            raise InputError(
                f"--slice '{text}': unknown attribute '{match['attribute'].strip()}' "
                f"(known: {', '.join(SLICE_ATTRIBUTES)})"
            )
        value = match["value"].strip()
        if not value:
            raise InputError(f"--slice '{text}': clause '{part}' has no value")
        if value.startswith(("=", "!")):
            raise InputError(
                f"--slice '{text}': malformed clause '{part}' (write ATTRIBUTE=VALUE with one "
                "'=', or ATTRIBUTE!=VALUE)"
            )
        op: Operator = "!=" if match["op"] == "!=" else "="
        clauses.append(SliceClause(attribute, op, value))
    return SliceFilter(text=text, clauses=tuple(clauses))


def with_age_bracket(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(age_bracket_expr()) if "age" in frame.columns else frame


def check_filters_match(filters: Sequence[SliceFilter], pairs: pl.DataFrame) -> None:
    """Fail before any model call when a user filter matches none of the sampled pairs: its
    accuracy would be an empty row, which reads like a result."""
    frame = with_age_bracket(pairs)
    for slice_filter in filters:
        for clause in slice_filter.clauses:
            if clause.attribute not in frame.columns:
                raise InputError(
                    f"--slice '{slice_filter.text}': the personas have no '{clause.attribute}'"
                )
        matched = frame.select(slice_filter.expr().sum()).item()
        if not matched:
            first = slice_filter.clauses[0].attribute
            values = frame.get_column(first).cast(pl.String).drop_nulls().unique().sort()
            shown = ", ".join(values.head(12).to_list()) + (", ..." if len(values) > 12 else "")
            raise InputError(
                f"--slice '{slice_filter.text}': matches none of the {frame.height} sampled "
                f"persona-prompt pairs ({first} values here: {shown or 'none'})"
            )

"""The ACS PUMS data dictionary in its published CSV format.

Rows are `NAME,var,type,len,label` (one per variable) and `VAL,var,type,len,lo,hi,label` (one per
code or code range). A code of all `b`s stands for a blank field.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from persona_testbed.errors import InputError

_YEAR_FACTOR = re.compile(r"\b((?:19|20)\d\d) factor\b")
_YEAR_PREFIX = re.compile(r"^((?:19|20)\d\d)")


def _is_blank_code(code: str) -> bool:
    return code != "" and set(code) == {"b"}


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass
class Variable:
    """One dictionary variable: its exact codes and numeric ranges, each with a label."""

    name: str
    kind: str  # "C" (character code) or "N" (number)
    length: int
    label: str
    codes: dict[str, str] = field(default_factory=dict)
    ranges: list[tuple[int, int, str]] = field(default_factory=list)
    blank_label: str | None = None

    @property
    def allows_blank(self) -> bool:
        return self.blank_label is not None

    def normalize(self, code: str) -> str:
        """Zero-pad a digit code to the dictionary width ("1" -> "01"), as files re-saved by
        spreadsheets often lose leading zeros."""
        if self.kind == "C" and code.isdigit() and len(code) < self.length:
            return code.zfill(self.length)
        return code

    def knows(self, code: str) -> bool:
        if code in self.codes:
            return True
        value = _as_int(code)
        return value is not None and any(lo <= value <= hi for lo, hi, _ in self.ranges)

    def label_of(self, code: str | None) -> str | None:
        if code is None:
            return self.blank_label
        if code in self.codes:
            return self.codes[code]
        value = _as_int(code)
        for lo, hi, label in self.ranges:
            if value is not None and lo <= value <= hi:
                return label
        return None


@dataclass
class DataDictionary:
    """A parsed dictionary; `years` are the survey years its ADJINC factors cover."""

    path: Path
    variables: dict[str, Variable]
    years: frozenset[int]

    @classmethod
    def load(cls, path: Path) -> DataDictionary:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig", errors="replace")
        except OSError as exc:
            raise InputError(f"{path}: cannot read data dictionary ({exc.strerror})") from None
        variables: dict[str, Variable] = {}
        # The same variable (SERIALNO, ADJINC, ...) appears in the housing and person sections;
        # keep the first definition and its codes only.
        closed: set[str] = set()
        current: str | None = None
        for number, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or not row[0].strip():
                continue
            kind = row[0].strip()
            if kind == "NAME":
                if len(row) < 5:
                    raise InputError(f"{path}, line {number}: NAME row needs 5 fields")
                name = row[1].strip()
                if current is not None:
                    closed.add(current)
                current = name
                if name not in variables:
                    variables[name] = Variable(
                        name=name,
                        kind=row[2].strip(),
                        length=_as_int(row[3].strip()) or 0,
                        label=row[4].strip(),
                    )
            elif kind == "VAL":
                if len(row) < 7:
                    raise InputError(f"{path}, line {number}: VAL row needs 7 fields")
                name = row[1].strip()
                if name in closed or name not in variables:
                    continue
                _add_value(variables[name], row[4].strip(), row[5].strip(), row[6].strip())
            else:
                raise InputError(
                    f"{path}, line {number}: expected a NAME or VAL row, found '{kind[:20]}' "
                    "(is this the PUMS data dictionary CSV?)"
                )
        if not variables:
            raise InputError(f"{path}: no variables found (is this the PUMS data dictionary CSV?)")
        return cls(path=path, variables=variables, years=_dictionary_years(variables, path))

    def variable(self, name: str) -> Variable:
        try:
            return self.variables[name]
        except KeyError:
            raise InputError(
                f"{self.path}: variable {name} is not in the data dictionary"
            ) from None

    def has(self, name: str) -> bool:
        return name in self.variables

    def with_fallback(self, other: DataDictionary) -> DataDictionary:
        """This dictionary, plus the variables only `other` defines (derived variables)."""
        merged = dict(other.variables)
        merged.update(self.variables)
        return DataDictionary(path=self.path, variables=merged, years=self.years)


def _add_value(variable: Variable, lo: str, hi: str, label: str) -> None:
    if _is_blank_code(lo):
        variable.blank_label = label
        return
    if lo == hi:
        variable.codes[lo] = label
        return
    lo_int, hi_int = _as_int(lo), _as_int(hi)
    if lo_int is not None and hi_int is not None:
        variable.ranges.append((lo_int, hi_int, label))
    # Other ranges (e.g. SERIALNO "2018GQ0000001".."2018GQ9999999") describe identifiers.


def _dictionary_years(variables: dict[str, Variable], path: Path) -> frozenset[int]:
    """Survey years from the ADJINC labels ("2018 factor (1.013097)"), else SERIALNO codes."""
    years: set[int] = set()
    adjinc = variables.get("ADJINC")
    if adjinc is not None:
        for label in adjinc.codes.values():
            years.update(int(m) for m in _YEAR_FACTOR.findall(label))
    if not years:
        match = re.search(r"((?:19|20)\d\d)(?:-((?:19|20)\d\d))?", path.name)
        if match:
            first = int(match.group(1))
            last = int(match.group(2) or first)
            years.update(range(first, last + 1))
    return frozenset(years)


def serial_year(serialno: str) -> int | None:
    """The survey year a SERIALNO belongs to (its first four digits)."""
    match = _YEAR_PREFIX.match(serialno)
    return int(match.group(1)) if match else None

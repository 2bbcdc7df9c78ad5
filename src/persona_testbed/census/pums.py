"""Reading ACS PUMS person and household files: zipped or plain CSV (or the bundled Parquet),
one or many states, 1-year or 5-year, the national split files (psam_pusa/psam_pusb).

Only the needed columns are read. Every code is checked against the data dictionary, so a bad
file fails here with a message naming the file, line and column, before anything is written.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from persona_testbed.census.dictionary import DataDictionary, serial_year
from persona_testbed.errors import InputError

# Person variables the persona needs (docs/personas.md maps each to its attribute).
PERSON_COLUMNS: tuple[str, ...] = (
    "SERIALNO",
    "SPORDER",
    "ST",
    "PWGTP",
    "ADJINC",
    "AGEP",
    "SEX",
    "RAC1P",
    "HISP",
    "ANC1P",
    "LANX",
    "LANP",
    "ENG",
    "SCHL",
    "SCH",
    "ESR",
    "COW",
    "INDP",
    "OCCP",
    "PINCP",
    "MAR",
    "POBP",
    "CIT",
    "MIL",
    "DIS",
    "HICOV",
    "DREM",
    "DEYE",
    "DEAR",
    "FER",
    "RELP",
)
# Household variables read from a psam_h file; HHT2 (2019+) is preferred over HHT.
HOUSEHOLD_COLUMNS: tuple[str, ...] = ("SERIALNO", "FPARC", "HHL")
HOUSEHOLD_TYPE_COLUMNS: tuple[str, ...] = ("HHT2", "HHT")

# ACS 2019+ replaced RELP with RELSHIPP (codes 20-38); the same relationships in RELP codes.
RELSHIPP = "RELSHIPP"
RELSHIPP_TO_RELP: dict[str, str] = {
    "20": "00",  # reference person
    "21": "01",  # opposite-sex spouse
    "23": "01",  # same-sex spouse
    "22": "13",  # opposite-sex unmarried partner
    "24": "13",  # same-sex unmarried partner
    "25": "02",  # biological son or daughter
    "26": "03",  # adopted son or daughter
    "27": "04",  # stepson or stepdaughter
    "28": "05",  # brother or sister
    "29": "06",  # father or mother
    "30": "07",  # grandchild
    "31": "08",  # parent-in-law
    "32": "09",  # son-in-law or daughter-in-law
    "33": "10",  # other relative
    "34": "12",  # roommate or housemate
    "35": "14",  # foster child
    "36": "15",  # other nonrelative
    "37": "16",  # institutionalized group quarters population
    "38": "17",  # noninstitutionalized group quarters population
}

NUMERIC_COLUMNS: frozenset[str] = frozenset({"SPORDER", "PWGTP", "ADJINC", "AGEP", "PINCP"})
# Identifiers are not codes: the dictionary only describes their format.
IDENTIFIER_COLUMNS: frozenset[str] = frozenset({"SERIALNO"})

# Zip members holding person / household records: (pattern, what to call them in messages).
PERSON_MEMBER = (re.compile(r"(^|/)psam_p[^/]*\.csv$", re.IGNORECASE), "psam_p*.csv person file")
HOUSEHOLD_MEMBER = (
    re.compile(r"(^|/)psam_h[^/]*\.csv$", re.IGNORECASE),
    "psam_h*.csv household file",
)

# Internal columns that locate each row in its file, for error messages.
SOURCE_INDEX = "_source"
LINE = "_line"


@dataclass(frozen=True)
class Table:
    """One readable table: `label` names it in messages (`file.zip!member.csv`)."""

    label: str
    path: Path

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"


@contextlib.contextmanager
def open_tables(
    paths: Sequence[Path], member: tuple[re.Pattern[str], str]
) -> Iterator[list[Table]]:
    """Yield the CSV/Parquet tables of `paths`, extracting zip members to a temporary folder
    (polars then reads only the needed columns from disk, never the whole file into memory)."""
    with tempfile.TemporaryDirectory(prefix="persona-pums-") as scratch:
        tables: list[Table] = []
        for number, raw in enumerate(paths):
            path = Path(raw)
            if not path.is_file():
                raise InputError(f"{path}: file not found")
            if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
                tables.extend(_extract(path, member, Path(scratch) / str(number)))
            else:
                tables.append(Table(label=str(path), path=path))
        yield tables


def _extract(path: Path, member: tuple[re.Pattern[str], str], folder: Path) -> list[Table]:
    pattern, kind = member
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if pattern.search(n)]
            if not names:
                found = ", ".join(n for n in archive.namelist() if n.endswith(".csv")) or "none"
                raise InputError(f"{path}: no {kind} in the zip (CSV members: {found})")
            tables = []
            folder.mkdir(parents=True, exist_ok=True)
            for number, name in enumerate(sorted(names)):
                target = folder / f"{number}-{Path(name).name}"
                with archive.open(name) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                tables.append(Table(label=f"{path}!{name}", path=target))
            return tables
    # A damaged archive fails while listing (BadZipFile) or while inflating a member (bad CRC,
    # zlib error, unexpected end of data).
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(f"{path}: corrupt zip archive ({exc})") from None


def _header(table: Table) -> list[str]:
    if table.is_parquet:
        return list(pl.read_parquet_schema(table.path))
    with open(table.path, encoding="utf-8-sig", errors="replace") as handle:
        first = handle.readline()
    return [name.strip().strip('"') for name in first.rstrip("\r\n").split(",")]


def _last_line(path: Path, chunk: int = 1 << 16) -> str:
    """The file's last non-empty line (read from the end; the file may be gigabytes)."""
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - chunk))
        tail = handle.read()
    lines = [line for line in tail.splitlines() if line.strip()]
    return lines[-1].decode("utf-8", errors="replace") if lines else ""


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        if handle.seek(0, 2) == 0:
            return True
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _check_complete(table: Table, header: list[str]) -> None:
    """A file cut off mid-row (an interrupted download or copy) ends in a short last row, or,
    cut inside its last field, without the newline every Census CSV ends with."""
    last = _last_line(table.path)
    fields = len(last.split(","))
    if last and fields != len(header) and last.split(",") != header:
        raise InputError(
            f"{table.label}: the last row has {fields} of {len(header)} fields: the file looks "
            "truncated (download or copy it again)"
        )
    if not _ends_with_newline(table.path):
        raise InputError(
            f"{table.label}: the file does not end with a newline: its last row looks cut off "
            "(download or copy it again)"
        )


def _read(table: Table, columns: Sequence[str]) -> pl.DataFrame:
    if not table.is_parquet:
        _check_complete(table, _header(table))
    try:
        if table.is_parquet:
            frame = pl.read_parquet(table.path, columns=list(columns))
            frame = frame.with_columns(pl.col(c).cast(pl.String) for c in columns)
        else:
            frame = pl.read_csv(
                table.path, columns=list(columns), infer_schema=False, low_memory=False
            )
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{table.label}: cannot read ({first})") from None
    # Line numbers as a text editor shows them (the header is line 1).
    return frame.with_row_index(LINE, offset=2)


def _require(table: Table, header: list[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise InputError(f"{table.label}: missing required column{plural} {', '.join(missing)}")


def read_persons(paths: Sequence[Path], dictionary: DataDictionary) -> pl.DataFrame:
    """The needed person columns of every file, checked against `dictionary`.

    Files from 2019 on carry RELSHIPP instead of RELP; it is checked, then translated to the
    RELP codes the household derivations use."""
    frames: list[pl.DataFrame] = []
    labels: list[str] = []
    with open_tables(paths, PERSON_MEMBER) as tables:
        for table in tables:
            header = _header(table)
            relationship = RELSHIPP if RELSHIPP in header and "RELP" not in header else "RELP"
            columns = [relationship if c == "RELP" else c for c in PERSON_COLUMNS]
            _require(table, header, columns)
            frame = _read(table, columns).with_columns(
                pl.lit(len(labels), pl.UInt32).alias(SOURCE_INDEX)
            )
            labels.append(table.label)
            if relationship == RELSHIPP:
                frame = _check_year(frame, dictionary, labels)
                frame = check_codes(frame, [RELSHIPP], dictionary, labels)
                frame = frame.with_columns(
                    pl.col(RELSHIPP).replace_strict(RELSHIPP_TO_RELP, default=None).alias(RELSHIPP)
                ).rename({RELSHIPP: "RELP"})
            frames.append(frame.select(*PERSON_COLUMNS, SOURCE_INDEX, LINE))
    persons = pl.concat(frames, how="vertical")
    _check_one_survey(persons, labels)
    persons = _check_year(persons, dictionary, labels)
    # Translated RELSHIPP codes were checked above; a 2019+ dictionary has no RELP to check.
    checked = [c for c in PERSON_COLUMNS if c != "RELP" or dictionary.has("RELP")]
    persons = check_codes(persons, checked, dictionary, labels)
    return persons.drop(SOURCE_INDEX, LINE)


def read_households(paths: Sequence[Path], dictionary: DataDictionary) -> pl.DataFrame:
    """SERIALNO, household type (HHT2, else HHT), FPARC and HHL from psam_h files."""
    frames: list[pl.DataFrame] = []
    with open_tables(paths, HOUSEHOLD_MEMBER) as tables:
        for table in tables:
            header = _header(table)
            _require(table, header, HOUSEHOLD_COLUMNS)
            kind = next((c for c in HOUSEHOLD_TYPE_COLUMNS if c in header), None)
            if kind is None:
                raise InputError(f"{table.label}: missing required column HHT2 or HHT")
            frame = _read(table, (*HOUSEHOLD_COLUMNS, kind))
            frame = frame.with_columns(pl.lit(0, pl.UInt32).alias(SOURCE_INDEX))
            frame = _check_year(frame, dictionary, [table.label])
            frame = check_codes(frame, (*HOUSEHOLD_COLUMNS, kind), dictionary, [table.label])
            # One household-type column name for all files; the variable name stays known.
            frame = frame.rename({kind: "HHT_CODE"}).with_columns(pl.lit(kind).alias("HHT_VAR"))
            frames.append(frame.drop(SOURCE_INDEX, LINE))
    return pl.concat(frames, how="vertical").unique("SERIALNO", keep="first", maintain_order=True)


def _survey_years(frame: pl.DataFrame) -> list[tuple[int, str]]:
    """Per source file: its index and its survey years as text ("2018", "2014-2018")."""
    bounds = frame.group_by(SOURCE_INDEX, maintain_order=True).agg(
        pl.col("SERIALNO").min().alias("first"), pl.col("SERIALNO").max().alias("last")
    )
    years = []
    for source, first, last in bounds.iter_rows():
        low, high = serial_year(first or ""), serial_year(last or "")
        if low is not None and high is not None:
            years.append((source, str(low) if low == high else f"{low}-{high}"))
    return years


def _check_one_survey(frame: pl.DataFrame, labels: list[str]) -> None:
    """Every file must come from the same survey (one year, or one 5-year span): files of
    different years (often one folder or glob too many) would mix populations and weights."""
    years = _survey_years(frame)
    other = next(((s, y) for s, y in years if y != years[0][1]), None)
    if other is not None:
        (first, first_years), (second, second_years) = years[0], other
        raise InputError(
            f"{labels[second]} holds {second_years} records but {labels[first]} holds "
            f"{first_years} records (column SERIALNO): give the PUMS files of one survey year"
        )


def _check_year(frame: pl.DataFrame, dictionary: DataDictionary, labels: list[str]) -> pl.DataFrame:
    """The data's survey years (SERIALNO starts with the year) must be years the dictionary
    describes. Serials sort by year, so each file's smallest and largest serial suffice."""
    if not dictionary.years:
        return frame
    bounds = frame.group_by(SOURCE_INDEX, maintain_order=True).agg(
        pl.col("SERIALNO").min().alias("first"), pl.col("SERIALNO").max().alias("last")
    )
    for source, first, last in bounds.iter_rows():
        for serial in (first, last):
            year = serial_year(serial or "")
            if year is not None and year not in dictionary.years:
                known = ", ".join(str(y) for y in sorted(dictionary.years))
                raise InputError(
                    f"{dictionary.path}: data dictionary is for {known} but "
                    f"{labels[source]} holds {year} records (column SERIALNO); "
                    "use the dictionary of the same survey year"
                )
    return frame


def check_codes(
    frame: pl.DataFrame,
    columns: Sequence[str],
    dictionary: DataDictionary,
    labels: list[str],
) -> pl.DataFrame:
    """Normalize codes (restore leading zeros), cast numbers, and fail on the first code the
    dictionary does not know, naming the file, line and column.

    Each column has few distinct values, so they are checked once each in Python and only a
    failing column is scanned again for the first bad row."""
    checked = [c for c in columns if c not in IDENTIFIER_COLUMNS]
    distinct = frame.select(pl.col(c).unique().implode() for c in checked).row(0)
    updates: list[pl.Expr] = []
    for column, values in zip(checked, distinct, strict=True):
        variable = dictionary.variable(column)
        numeric = column in NUMERIC_COLUMNS or variable.kind == "N"
        bad: list[str | None] = []
        renamed: dict[str, str] = {}
        for value in values:
            if value is None:
                if not variable.allows_blank:
                    bad.append(None)
            elif numeric:
                number = _as_int(value)
                if number is None or not variable.knows(str(number)):
                    bad.append(value)
            else:
                code = variable.normalize(value)
                if not variable.knows(code):
                    bad.append(value)
                elif code != value:
                    renamed[value] = code
        if bad:
            _fail_on(frame, column, bad, dictionary, labels)
        if numeric:
            updates.append(pl.col(column).cast(pl.Int64))
        elif renamed:
            updates.append(pl.col(column).replace(renamed))
    return frame.with_columns(updates) if updates else frame


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _fail_on(
    frame: pl.DataFrame,
    column: str,
    bad: list[str | None],
    dictionary: DataDictionary,
    labels: list[str],
) -> None:
    values = [b for b in bad if b is not None]
    condition = pl.col(column).is_in(values) if values else pl.lit(False)
    if None in bad:
        condition = condition | pl.col(column).is_null()
    hits = frame.select(SOURCE_INDEX, LINE, pl.col(column)).filter(condition)
    source, line, value = hits.row(0)
    shown = "a blank" if value is None else f"code '{value}'"
    more = f" ({hits.height} rows in all)" if hits.height > 1 else ""
    raise InputError(
        f"{labels[source]}, line {line}, column {column}: {shown} is not in the data "
        f"dictionary {dictionary.path}{more}"
    )

"""Which PUMS files a `--pums` / `--households` value (or a config's `pums:` entry) names.

A value is a file, a folder (its PUMS files of that kind, by the Census Bureau's names) or a
glob pattern (`data/csv_p*.zip`, quoted so the shell leaves it alone; `**` descends into
folders). The files come back sorted within each value, in the order the values were given, each
file once. A pattern that matches nothing and a folder without PUMS files are errors naming
them; a plain file that does not exist is left for the reader to report.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from persona_testbed.errors import InputError

GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class FileKind:
    """One kind of PUMS file: how the Census Bureau names it, and what to call it."""

    name: str
    pattern: re.Pattern[str]
    examples: str


# csv_pvt.zip / csv_pus.zip (state / national zips), psam_p50.csv / psam_pusa.csv (unzipped).
PERSON_FILES = FileKind(
    "PUMS person",
    re.compile(r"^(csv_p\w+\.zip|psam_p\w+\.csv)$", re.IGNORECASE),
    "csv_p*.zip, psam_p*.csv",
)
HOUSEHOLD_FILES = FileKind(
    "PUMS household",
    re.compile(r"^(csv_h\w+\.zip|psam_h\w+\.csv)$", re.IGNORECASE),
    "csv_h*.zip, psam_h*.csv",
)


def is_pattern(value: Path | str) -> bool:
    return any(character in GLOB_CHARACTERS for character in str(value))


def _matches(pattern: Path) -> list[Path]:
    found = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    files = [path for path in found if path.is_file()]
    if not files:
        raise InputError(f"{pattern}: no file matches this pattern")
    return files


def _folder(folder: Path, kind: FileKind) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and kind.pattern.match(p.name))
    if not files:
        raise InputError(f"{folder}: no {kind.name} files in this folder ({kind.examples})")
    return files


def expand_files(values: Iterable[Path | str], kind: FileKind) -> tuple[Path, ...]:
    """The files `values` name (see the module docstring)."""
    files: dict[Path, Path] = {}  # resolved -> as named, so one file given twice is read once
    for raw in values:
        value = Path(raw).expanduser()
        if is_pattern(value) and not value.exists():
            named = _matches(value)
        elif value.is_dir():
            named = _folder(value, kind)
        else:
            named = [value]
        for path in named:
            files.setdefault(path.resolve(), path)
    return tuple(files.values())

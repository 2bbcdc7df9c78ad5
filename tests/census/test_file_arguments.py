"""`--pums` takes several files, a folder or a quoted glob, through the real command line (issue
16: `persona personas --pums csv_p*.zip` failed with "Got unexpected extra argument(s)")."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.cli.app import main

from .conftest import write_person_csv

# Vermont and New Hampshire are among the bundled sample's states.
STATES = {"50": "vt", "33": "nh"}


def state_zip(rows: pl.DataFrame, state: str, folder: Path) -> Path:
    """A zip named as the Census Bureau names it (csv_pvt.zip) holding psam_pNN.csv: the
    first 60 households of the state in the bundled sample."""
    own = rows.filter(pl.col("ST") == state)
    serials = own.get_column("SERIALNO").unique(maintain_order=True).head(60)
    csv = write_person_csv(
        own.filter(pl.col("SERIALNO").is_in(serials.implode())), folder / f"psam_p{state}.csv"
    )
    target = folder / f"csv_p{STATES[state]}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.write(csv, csv.name)
    csv.unlink()
    return target


@pytest.fixture
def pums_dir(tmp_path: Path, bundled_rows: pl.DataFrame) -> Path:
    folder = tmp_path / "pums"
    folder.mkdir()
    for state in STATES:
        state_zip(bundled_rows, state, folder)
    (folder / "README.txt").write_text("not a PUMS file: a folder's other files are ignored")
    return folder


def personas(out: Path, *pums: str) -> int:
    return main(["personas", "--out", str(out), "--no-llm", "--n", "30", "--pums", *pums])


def recorded_pums(out: Path) -> list[str]:
    manifest = json.loads((out / "manifest.json").read_text())
    pums: list[str] = manifest["stages"]["personas"]["config"]["pums"]
    return pums


def test_several_files_a_folder_and_a_quoted_glob_give_the_same_personas(
    tmp_path: Path, pums_dir: Path
) -> None:
    files = sorted(str(p) for p in pums_dir.glob("csv_p*.zip"))
    # What the shell makes of `--pums DIR/csv_p*.zip`: several words after one option.
    assert personas(tmp_path / "listed", *files) == 0
    assert personas(tmp_path / "folder", str(pums_dir)) == 0
    assert personas(tmp_path / "glob", str(pums_dir / "csv_p*.zip")) == 0
    # The files read are recorded, whichever way they were named.
    for run in ("listed", "folder", "glob"):
        assert recorded_pums(tmp_path / run) == files, run
    listed = pl.read_parquet(tmp_path / "listed" / "personas.parquet")
    assert set(listed.get_column("source_state")) == set(STATES)  # records of both files
    for run in ("folder", "glob"):
        assert pl.read_parquet(tmp_path / run / "personas.parquet").equals(listed), run


def test_options_after_the_file_list_still_apply(tmp_path: Path, pums_dir: Path) -> None:
    files = sorted(str(p) for p in pums_dir.glob("csv_p*.zip"))
    out = tmp_path / "run"
    args = ["personas", "--pums", *files, "--n", "12", "--no-llm", "--out", str(out)]
    assert main(args) == 0
    assert pl.read_parquet(out / "personas.parquet").height == 12
    assert recorded_pums(out) == files


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("pattern", "csv_px*.zip: no file matches this pattern"),
        ("empty folder", "empty: no PUMS person files in this folder (csv_p*.zip, psam_p*.csv)"),
        ("mixed years", "holds 2019 records but"),
        ("one dictionary", "--dictionary takes one path, but 2 were given"),
    ],
)
def test_each_file_list_error_is_one_line_naming_the_file(
    tmp_path: Path,
    pums_dir: Path,
    bundled_rows: pl.DataFrame,
    capsys: pytest.CaptureFixture[str],
    problem: str,
    message: str,
) -> None:
    out = tmp_path / "out"
    if problem == "pattern":
        code = personas(out, str(pums_dir / "csv_px*.zip"))
    elif problem == "empty folder":
        (tmp_path / "empty").mkdir()
        code = personas(out, str(tmp_path / "empty"))
    elif problem == "mixed years":
        later = bundled_rows.filter(pl.col("ST") == "50").head(40)
        later = later.with_columns(pl.col("SERIALNO").str.replace("^2018", "2019"))
        write_person_csv(later, pums_dir / "psam_p50.csv")
        code = personas(out, str(pums_dir))
    else:
        dictionaries = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
        code = main(["personas", "--out", str(out), "--no-llm", "--dictionary", *dictionaries])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and message in err, err
    assert not out.exists()


def test_a_config_names_pums_files_by_folder_glob_or_list(tmp_path: Path, pums_dir: Path) -> None:
    files = sorted(str(p) for p in pums_dir.glob("csv_p*.zip"))
    # Relative to the config file's folder, as every path in a config is.
    for name, value in (
        ("folder", "pums"),
        ("glob", "'pums/csv_p*.zip'"),
        ("list", "[pums/csv_pnh.zip, pums/csv_pvt.zip]"),
    ):
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            f"stages: [personas]\npersonas: {{n: 10, use_llm: false, pums: {value}}}\n"
        )
        out = tmp_path / f"run-{name}"
        assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0, name
        assert recorded_pums(out) == files, name


def test_a_config_pattern_that_matches_nothing_fails_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("stages: [personas]\npersonas: {use_llm: false, pums: 'nowhere/*.zip'}\n")
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere/*.zip: no file matches this pattern" in err, err
    assert not (tmp_path / "run" / "personas.parquet").exists()

"""Every command that writes files ends by saying what it wrote and where (issue 16), run
through the real `persona` entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from persona_testbed.cli.app import main
from persona_testbed.testing.loopback import LoopbackServer
from tests.annotate.conftest import write_items_jsonl


def personas_run(tmp: Path) -> Path:
    run = tmp / "run"
    args = ["personas", "--out", str(run), "--n", "20", "--no-llm", "--rake", "none"]
    assert main(args) == 0
    return run


def manifest_outputs(run: Path, stage: str) -> list[Path]:
    manifest = json.loads((run / "manifest.json").read_text())
    return [run / name for name in manifest["stages"][stage]["outputs"]]


def case_personas(tmp: Path) -> tuple[list[str], list[Path]]:
    run = tmp / "run"
    args = ["personas", "--out", str(run), "--n", "20", "--no-llm"]
    return args, [run / "personas.parquet", run / "personas.jsonl", run / "manifest.json"]


def case_census_compare(tmp: Path) -> tuple[list[str], list[Path]]:
    run = personas_run(tmp)
    return ["census-compare", "--run", str(run)], [
        run / "census_compare.csv",
        run / "census_compare.png",
        run / "manifest.json",
    ]


def case_report(tmp: Path) -> tuple[list[str], list[Path]]:
    run = personas_run(tmp)
    return ["report", "--run", str(run)], [run / "report" / "index.html"]


def case_complete(tmp: Path) -> tuple[list[str], list[Path]]:
    requests = tmp / "requests.jsonl"
    requests.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    output = tmp / "results.jsonl"
    args = ["complete", "--model", "openai:loopback", "--input", str(requests)]
    return [*args, "--output", str(output), "--no-progress"], [output]


def case_create_study(tmp: Path) -> tuple[list[str], list[Path]]:
    items = write_items_jsonl(tmp / "items.jsonl", personas=2, questions=2)
    db, links = tmp / "study.sqlite", tmp / "links.csv"
    args = ["annotate", "create-study", "--items", str(items), "--db", str(db)]
    args += ["--personas", "2", "--questions", "2", "--per-persona", "1", "--majority", "1"]
    return [*args, "--links-out", str(links)], [db, links]


def case_export(tmp: Path) -> tuple[list[str], list[Path]]:
    made, _ = case_create_study(tmp)
    assert main(made) == 0
    out, majority = tmp / "labels.csv", tmp / "majority.csv"
    args = ["annotate", "export", "--db", str(tmp / "study.sqlite"), "--out", str(out)]
    return [*args, "--majority-out", str(majority)], [out, majority]


CASES: dict[str, Callable[[Path], tuple[list[str], list[Path]]]] = {
    "personas": case_personas,
    "census-compare": case_census_compare,
    "report": case_report,
    "complete": case_complete,
    "annotate create-study": case_create_study,
    "annotate export": case_export,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_command_output_ends_with_what_it_wrote(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer() as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", server.base_url)
        args, expected = CASES[name](tmp_path)
        capsys.readouterr()  # only the command under test
        assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    written = []
    for line in reversed(lines):  # the closing block of `wrote PATH` lines
        if not line.startswith("wrote "):
            break
        # `wrote PATH`, or `wrote study NAME to sqlite:PATH` for a study database
        target = line.removeprefix("wrote ").rsplit(" to ", 1)[-1]
        written.append(Path(target.removeprefix("sqlite:")))
    assert written, lines
    assert all(path.exists() for path in written), written
    assert set(expected) <= set(written), (expected, lines[-8:])


@pytest.mark.parametrize("stage", ["personas", "census-compare"])
def test_a_stage_command_lists_every_output_its_manifest_records(
    stage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = personas_run(tmp_path)
    if stage == "census-compare":
        capsys.readouterr()
        assert main(["census-compare", "--run", str(run)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = [f"wrote {path}" for path in [*manifest_outputs(run, stage), run / "manifest.json"]]
    assert lines[-len(expected) :] == expected

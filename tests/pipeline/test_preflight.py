"""Config files and run inputs are checked before any model call (issue 18): duplicate keys,
non-UTF-8 text, paths relative to the config file, and every stage's inputs in a dry run and at
the start of a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_testbed.cli.app import main
from persona_testbed.errors import InputError
from persona_testbed.pipeline import RunConfig, load_yaml_model
from persona_testbed.testing.loopback import LoopbackServer

REPO = Path(__file__).resolve().parents[2]


def write(folder: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_a_duplicate_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\npersonas:\n  n: 5\n  rake: us-2022\n  n: 50\n")
    with pytest.raises(InputError) as caught:
        load_yaml_model(path, RunConfig)
    assert str(caught.value) == f"{path}:5: n: duplicate key (first given on line 3)"


def test_a_config_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "model: openai:caf\xe9\n".encode("latin-1"))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not UTF-8" in err and str(path) in err


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    text = "llm:\n  cache: cache.sqlite\nprompts:\n  source: prism\n  path: c.jsonl\n"
    path = write(folder, text)
    config = load_yaml_model(path, RunConfig)
    assert config.llm.cache == folder.resolve() / "cache.sqlite"
    assert config.prompts.path == folder.resolve() / "c.jsonl"
    absolute = write(folder, f"prompts:\n  source: prism\n  path: {tmp_path}/x.jsonl\n", "b.yaml")
    assert load_yaml_model(absolute, RunConfig).prompts.path == tmp_path / "x.jsonl"


def test_a_rake_target_or_template_folder_next_to_the_config_is_found_there(
    tmp_path: Path,
) -> None:
    # Text fields that take a bundled name or a path: a path is relative to the config too,
    # while a bundled name (or a path that is not next to the config) is left as written.
    folder = tmp_path / "study"
    (folder / "mine").mkdir(parents=True)
    (folder / "target.csv").write_text("x\n")
    text = "personas:\n  rake: target.csv\npreferences:\n  templates: mine\n"
    config = load_yaml_model(write(folder, text), RunConfig)
    assert config.personas.rake == str(folder.resolve() / "target.csv")
    assert config.preferences.templates == str(folder.resolve() / "mine")
    named = write(
        folder, "personas:\n  rake: us-2022\npreferences:\n  templates: paper\n", "n.yaml"
    )
    config = load_yaml_model(named, RunConfig)
    assert (config.personas.rake, config.preferences.templates) == ("us-2022", "paper")


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("personas:\n  n: 3\n  rake: us-2202\n", "--rake us-2202"),
        ("personas:\n  n: 3\n  pums: [bad.zip]\n", "corrupt zip archive"),
        ("prompts:\n  source: prism\n  path: missing.jsonl\n", "missing.jsonl"),
    ],
)
def test_a_dry_run_checks_every_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, expected: str
) -> None:
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    path = write(tmp_path, "model: openai:gpt-4o\n" + section)
    assert main(["run", str(path), "--dry-run", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err


def test_a_real_run_checks_later_stages_inputs_before_the_first_model_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As configs/paper.yaml without PRISM's file: the personas stage must not run (and pay)
    before the prompts stage finds its input missing."""
    with LoopbackServer() as server:
        path = write(
            tmp_path,
            f"model: openai:loopback\nstages: [personas, prompts]\n"
            f"llm:\n  base_url: {server.base_url}\n"
            "personas:\n  n: 3\nprompts:\n  source: prism\n  path: conversations.jsonl\n",
        )
        assert main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
        assert server.stats()["total"] == 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "conversations.jsonl" in err and "[prompts]" in err
    assert not (tmp_path / "run" / "personas.parquet").exists()


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (
            "bench:\n  models: [gguf:missing/model.gguf]\n",
            "missing/model.gguf: GGUF file not found",
        ),
        ("agreement:\n  loo:\n    annotators: [claude:x]\n", "unknown model spec 'claude:x'"),
    ],
)
def test_every_model_spec_is_checked_before_the_first_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], models: str, expected: str
) -> None:
    """Issue 14: a bad spec of a later stage (a GGUF file that is not there, an unknown scheme)
    fails the dry run and the real run before the personas stage has run."""
    path = write(tmp_path, "model: openai:gpt-4o\nstages: [personas, bench, agreement]\n"
                 "personas:\n  n: 3\n  use_llm: false\n" + models)  # fmt: skip
    out = tmp_path / "run"
    assert main(["run", str(path), "--dry-run", "--out", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err
    assert not (out / "personas.parquet").exists()

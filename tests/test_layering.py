"""Layering: importing a library package never loads the command line (Typer,
persona_testbed.cli) or matplotlib; ruff's TID251 bans the imports, this checks what loads."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

LIBRARY_PACKAGES = (
    "persona_testbed.agreement",
    "persona_testbed.align",
    "persona_testbed.annotate",
    "persona_testbed.bench",
    "persona_testbed.census",
    "persona_testbed.estimation",
    "persona_testbed.llm",
    "persona_testbed.pipeline",
    "persona_testbed.preferences",
    "persona_testbed.prompts",
    "persona_testbed.report",
    "persona_testbed.run",
    "persona_testbed.testing",
)
# Loaded only by the command line, or when a figure is drawn.
NEVER_ON_IMPORT = ("typer", "persona_testbed.cli", "matplotlib")


def loaded_after_import(packages: tuple[str, ...]) -> list[str]:
    """Which of NEVER_ON_IMPORT a fresh interpreter holds after importing `packages`."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {list(packages)!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {list(NEVER_ON_IMPORT)!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_library_packages_load_neither_the_cli_nor_matplotlib() -> None:
    assert loaded_after_import(LIBRARY_PACKAGES) == []


def test_the_cli_does_load_typer() -> None:
    # The check above can fail: importing the command line shows up in sys.modules.
    assert loaded_after_import(("persona_testbed.cli.app",)) == ["typer", "persona_testbed.cli"]


def test_the_console_script_entry_runs_the_whole_app() -> None:
    # pyproject's `persona = "persona_testbed.cli:entry"`, as the installed script calls it.
    script = "import sys; from persona_testbed.cli import entry; sys.argv = ['persona']; entry()"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    listed = done.stdout + done.stderr
    commands = ("personas", "prompts", "preferences", "annotate", "run", "bench", "align", "report")
    for command in commands:
        assert f" {command} " in listed

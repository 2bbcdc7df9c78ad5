"""`persona agreement loo|models` through Typer, against the loopback OpenAI-compatible server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from persona_testbed.agreement.loo_stage import ATTRIBUTES_MD, BOXPLOT_PNG
from persona_testbed.agreement.models_stage import MATRIX_PNG, MODELS_HISTOGRAMS_PNG
from persona_testbed.cli.agreement import register
from persona_testbed.errors import PersonaError
from persona_testbed.testing.loopback import LoopbackServer

from .helpers import make_run

LOG_08, LOG_02 = math.log(0.8), math.log(0.2)
RULES: list[dict[str, Any]] = [
    {"contains": "Revise the COMPLETION", "reply": "REVISED PREFERENCE: [refined] brief.\nDONE"},
    {"contains": "Examine the COMPLETION", "reply": "EVALUATION: long. SUGGESTIONS: cut.\nDONE"},
    # Log-probabilities: the role-play judge prefers the refined answer in either order.
    {"contains": "Answer A: [refined]", "reply": "A", "logprobs": {"A": LOG_08, "B": LOG_02}},
    {"contains": "Which answer", "reply": "B", "logprobs": {"A": LOG_02, "B": LOG_08}},
    {"reply": "A plain answer."},
]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        srv.set_rules(RULES)
        yield srv


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _invoke(args: list[str]) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(_app(), args)
    return result.exit_code, result.output, result.exception


def test_loo_command(server: LoopbackServer, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    code, output, error = _invoke(
        [
            "agreement", "loo", "--run", str(run.path), "--attributes", "2", "--pairs", "2",
            "--questions", "3", "--model", "openai:loopback", "--base-url", server.base_url,
            "--resamples", "50", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0, (output, error)
    assert (
        "2 attributes" in output and "most influential first, by PABAK (openai:loopback)" in output
    )
    assert run.file(ATTRIBUTES_MD).is_file() and run.file(BOXPLOT_PNG).is_file()


def test_models_command(server: LoopbackServer, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, pairs_per_persona=2)
    code, output, error = _invoke(
        [
            "agreement", "models", "--run", str(run.path),
            "--annotators", "openai:loopback-a,openai:loopback-b", "--base-url", server.base_url,
            "--resamples", "50", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0, (output, error)
    assert "6 items of 3 personas" in output
    assert "kappa openai:loopback-a vs openai:loopback-b" in output
    assert run.file(MATRIX_PNG).is_file() and run.file(MODELS_HISTOGRAMS_PNG).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["loo", "--attributes", "2", "--attribute", "age"], "not both"),
        (["loo", "--refine-for", "sideways"], "--refine-for 'sideways'"),
        (["loo", "--undefined-kappa", "zero"], "--undefined-kappa 'zero'"),
        (["loo", "--annotators", "openai:x,openai:x"], "listed twice"),
        (["models", "--annotators", "openai:x"], "needs two annotator models"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    run = make_run(tmp_path / "run")
    code, _, error = _invoke(["agreement", args[0], "--run", str(run.path), *args[1:]])
    assert code != 0
    assert isinstance(error, PersonaError)
    assert message in str(error) and "\n" not in str(error)


def test_not_a_run_directory(tmp_path: Path) -> None:
    _, _, error = _invoke(
        ["agreement", "models", "--run", str(tmp_path), "--annotators", "openai:a,openai:b"]
    )
    assert isinstance(error, PersonaError)
    assert "not a run directory" in str(error)

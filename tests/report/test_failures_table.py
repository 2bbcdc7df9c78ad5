"""The report's table of generation failures and truncations per step."""

from __future__ import annotations

from pathlib import Path

from persona_testbed.report import write_report
from persona_testbed.report.failures import TITLE, failures_frame
from persona_testbed.run import RunDir
from tests.report.test_report import sections_of


def test_report_shows_failures_and_truncations_per_step(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    tally = {
        "outputs": 40,
        "retried": 7,
        "retried_by_reason": {"empty": 2, "truncated": 5},
        "failed": 3,
        "by_reason": {"error": 1, "truncated": 2},
    }
    with run.stage("bench", {"n": 1}, seed=0, inputs=[]) as stage:
        stage.record.stats["generation"] = {"answer (openai:x)": tally}
    with run.stage("prompts", {"source": "demo"}, seed=0, inputs=[]):
        pass  # a stage that generates no text gets no table

    frame = failures_frame(run, ["bench", "prompts"])
    assert frame.to_dicts() == [
        {
            "stage": "bench",
            "step": "answer (openai:x)",
            "outputs": 40,
            "truncated at first try": 5,
            "retried (any reason)": 7,
            "failed after retry": 3,
            "failures by reason": "error 1, truncated 2",
            "retries by reason": "empty 2, truncated 5",
        }
    ]
    sections = sections_of(write_report(run.path).read_text("utf-8"))
    assert TITLE in sections["bench"]
    assert "answer (openai:x)" in sections["bench"] and "error 1, truncated 2" in sections["bench"]
    assert TITLE not in sections["prompts"]

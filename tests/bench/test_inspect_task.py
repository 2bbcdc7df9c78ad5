"""The inspect_ai task scores the same as `persona bench` on the same model outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from persona_testbed.bench import BenchConfig, Method, run_bench_stage
from persona_testbed.llm import ChatRequest, Message
from persona_testbed.run import RunDir

from .conftest import MARK, clients_for, draw, marker_judge, shown_attribute

inspect_ai = pytest.importorskip("inspect_ai")
# inspect's own retry setup warns about a tenacity parameter; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from persona_testbed.bench.inspect_task import persona_bench  # noqa: E402


def answer_script(request: ChatRequest) -> str:
    """Marks some Female personas' answers; question 0 makes the judge fail to parse."""
    content = request.messages[-1].content
    if content.endswith("for this question:"):
        return "She cares about family."
    system = request.messages[0].content
    marked = shown_attribute(request, "sex") == "Female" and draw(system, content) < 0.7
    answer = f"Try this. {MARK}" if marked else "Try this."
    if "number 0" in content:
        answer = "[[BAD]]"
    return f"Reasoning: short.\nAnswer: {answer}" if "Reasoning:" in system else answer


def judge_script(request: ChatRequest) -> str | tuple[str, dict[str, float]]:
    if not request.top_logprobs and "[[BAD]]" in request.messages[-1].content:
        return "no verdict today"
    if not request.top_logprobs and request.messages[-1].content.startswith("That reply"):
        return "still no verdict"  # the re-ask after "no verdict today"
    return marker_judge(request)


def mock_model(name: str, script: Callable[[ChatRequest], Any]) -> Any:
    def output(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        ours = tuple(Message(role=m.role, content=m.text) for m in messages)
        reply = script(ChatRequest(model=name, messages=ours))
        text = reply[0] if isinstance(reply, tuple) else reply
        result = ModelOutput.from_content(model=name, content=text)
        # Usage given, so mockllm does not count tokens with tiktoken (which downloads its
        # encoding file: this test must run offline).
        result.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return result

    return get_model(f"mockllm/{name}", custom_outputs=output, memoize=False)


@pytest.mark.parametrize("method", [Method.PERSONA, Method.PERSONA_COT, Method.PERSONA_SUMMARY])
def test_inspect_accuracy_equals_bench_accuracy(
    method: Method, make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    run = make_run(n_personas=8, n_prompts=3)
    clients = clients_for(tmp_path, answer_script, judge_script)
    config = BenchConfig(models=("m",), judge="j", methods=(method,), n=16, seed=4)
    ours = run_bench_stage(run, config, clients=clients).metrics[0]

    (log,) = inspect_eval(
        persona_bench(run=str(run.path), method=method.value, n=16, seed=4),
        model=mock_model("answers", answer_script),
        model_roles={"grader": mock_model("judge", judge_script)},
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    assert log.results is not None
    metrics = log.results.scores[0].metrics
    assert ours.verdict_errors > 0 and ours.accuracy.value not in (None, 0.0, 1.0)
    assert metrics["verdict_errors"].value == ours.verdict_errors
    assert metrics["bench_accuracy"].value == pytest.approx(ours.accuracy.value)
    assert log.samples is not None and len(log.samples) == 16


def test_inspect_epochs_give_the_pooled_accuracy_of_k_samples(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    run = make_run(n_personas=8, n_prompts=3)
    clients = clients_for(tmp_path, answer_script, judge_script)
    config = BenchConfig(models=("m",), judge="j", methods=(Method.PERSONA,), n=10, k=2)
    ours = run_bench_stage(run, config, clients=clients).metrics[0]
    (log,) = inspect_eval(
        persona_bench(run=str(run.path), method="persona", n=10),
        model=mock_model("answers", answer_script),
        model_roles={"grader": mock_model("judge", judge_script)},
        epochs=2,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.results is not None
    metrics = log.results.scores[0].metrics
    assert metrics["bench_accuracy"].value == pytest.approx(ours.accuracy.value)

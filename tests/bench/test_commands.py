"""`persona bench`: dry run, a full run against the loopback OpenAI-compatible server, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner, Result

from persona_testbed.cli.bench import bench, register
from persona_testbed.cli.options import ClientOptions
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.run import RunDir
from persona_testbed.testing.loopback import LoopbackServer


def run_bench(run: RunDir, *options: str) -> Result:
    """`persona bench --run RUN OPTIONS...` through Typer."""
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """Keep `bench` a named sub-command."""

    args = ["bench", "--run", str(run.path), *options]
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_dry_run_prints_the_plan_and_writes_nothing(make_run: Callable[..., RunDir]) -> None:
    run = make_run(n_personas=5, n_prompts=4)
    result = run_bench(
        run,
        *("--model", "openai:gpt-4o-mini", "--judge", "openai:gpt-4o"),
        *("--methods", "persona,persona-summary", "--n", "6", "--k", "3", "--dry-run"),
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "nothing sent" in out
    # 6 pairs x 2 methods x 3 samples = 36 answers; 18 summaries; 36 critic + 36 subtlety.
    assert "openai:gpt-4o-mini: answers: 36 calls" in out
    assert "openai:gpt-4o-mini: summaries (persona-summary): 18 calls" in out
    assert "openai:gpt-4o: critic verdicts: 36 calls" in out
    assert "openai:gpt-4o: subtlety checks (1 token): 36 calls" in out
    assert "estimated total: $" in out
    assert not (run.path / "bench").exists()
    assert run.stage_record("bench") is None


def test_the_judge_defaults_to_the_model_under_test(make_run: Callable[..., RunDir]) -> None:
    """Issue 14: without --judge, the judge is the (first) --model, as in `persona preferences`
    and `persona run`, never the embedded model."""
    run = make_run(n_personas=3, n_prompts=2)
    result = run_bench(
        run, *("--model", "openai:gpt-4o-mini", "--methods", "persona", "--n", "2", "--dry-run")
    )
    assert result.exit_code == 0, result.output
    assert "openai:gpt-4o-mini: critic verdicts: 2 calls" in result.output
    assert "smollm2" not in result.output


def test_bench_runs_against_an_openai_compatible_endpoint(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    run = make_run(n_personas=4, n_prompts=3)
    with LoopbackServer() as server:
        server.set_rules(
            [
                {
                    "contains": "Reply Yes or No",
                    "reply": "No",
                    "logprobs": {"No": -0.1, "Yes": -2.4},
                },
                {
                    "contains": "ANSWER:",
                    "reply": json.dumps({"reasoning": "fits", "needs_revision": False}),
                },
            ]
        )
        result = run_bench(
            run,
            *("--model", "openai:loopback", "--judge", "openai:loopback-judge"),
            *("--base-url", server.base_url, "--methods", "no-persona,persona-cot"),
            *("--n", "3", "--k", "2", "--slice", "sex=Female"),
            *("--cache", str(tmp_path / "cache.sqlite"), "--no-progress"),
        )
    assert result.exit_code == 0, result.output
    # Every verdict passes: no bootstrap variance, so the interval is Wilson over the personas
    # (the most clustered case), never a zero-width [1.000, 1.000].
    assert "openai:loopback" in result.output and "accuracy 1.000 [0." in result.output
    assert "[1.000, 1.000]" not in result.output
    samples = pl.read_parquet(run.file("bench/samples.parquet"))
    assert samples.height == 3 * 2 * 2
    assert set(samples["judge_model"]) == {"openai:loopback-judge"}
    assert samples["passed"].all()
    assert samples["not_subtle"].not_().all()
    summary = json.loads(run.file("bench/summary.json").read_text())
    assert summary["judge_model"] == "openai:loopback-judge"
    assert {p for p in run.stage_record("bench").outputs if p.endswith(".png")} == {  # type: ignore[union-attr]
        "bench/accuracy_by_method.png",
        "bench/pass_at_k.png",
        "bench/slices.png",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"slice_": ["gender=Female"]}, "--slice 'gender=Female': unknown attribute 'gender'"),
        ({"methods": "persona,magic"}, "unknown method 'magic'"),
        ({"loo": "religion,shoe size"}, "--loo: unknown attribute 'shoe size'"),
        ({"k": 1000}, "--k: Input should be less than or equal to 64"),
        ({"persona_split": "dev"}, "--persona-split: Input should be 'test', 'train' or 'all'"),
        ({"n": 500}, "--n 500 asks for more pairs than there are"),
    ],
)
def test_bad_options_give_one_line_errors(
    make_run: Callable[..., RunDir], options: dict[str, object], message: str
) -> None:
    run = make_run()
    with pytest.raises(PersonaError) as error:
        bench(run=run.path, dry_run=True, **options)  # type: ignore[arg-type]
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"personas\.parquet: not found"):
        bench(run=tmp_path / "nowhere", dry_run=True)
    with pytest.raises(InputError, match=r"personas\.parquet: not found"):
        bench(
            run=tmp_path / "nowhere",
            model=["openai:x"],
            client_options=ClientOptions(base_url="http://127.0.0.1:9/v1"),
        )
    assert not (tmp_path / "nowhere").exists()

from __future__ import annotations

import polars as pl
import pytest

from persona_testbed.estimation.bootstrap import wilson_interval
from persona_testbed.preferences import (
    CallPlan,
    PairSizes,
    assign_prompts,
    expected_unique,
    load_templates,
    plan_calls,
    verification_markdown,
    verification_report,
)

TRAIN = [f"t{i}" for i in range(40)]
HELDOUT = [f"h{i}" for i in range(12)]


def test_each_persona_gets_distinct_prompts_from_the_right_pools() -> None:
    sizes = PairSizes(train=10, test_seen=5, test_unseen=4)
    pairs = assign_prompts(["a", "b", "c"], TRAIN, HELDOUT, sizes, seed=1)
    assert len(pairs) == 3 * 19
    for persona in ("a", "b", "c"):
        mine = pairs.filter(pl.col("persona_id") == persona)
        assert mine["prompt_id"].n_unique() == 19
        counts = dict(mine["split"].value_counts().iter_rows())
        assert counts == {"train": 10, "test_seen": 5, "test_unseen": 4}
        seen = mine.filter(pl.col("split") != "test_unseen")["prompt_id"]
        assert seen.is_in(TRAIN).all()
        assert mine.filter(pl.col("split") == "test_unseen")["prompt_id"].is_in(HELDOUT).all()


def test_assignment_is_seeded_and_stable_per_persona() -> None:
    sizes = PairSizes(5, 2, 2)
    first = assign_prompts(["a", "b"], TRAIN, HELDOUT, sizes, seed=4)
    assert assign_prompts(["a", "b"], TRAIN, HELDOUT, sizes, seed=4).equals(first)
    assert not assign_prompts(["a", "b"], TRAIN, HELDOUT, sizes, seed=5).equals(first)
    # Adding a persona leaves the others' prompts as they were.
    more = assign_prompts(["a", "b", "z"], TRAIN, HELDOUT, sizes, seed=4)
    assert more.filter(pl.col("persona_id") != "z").equals(first)
    # Personas draw independently: two personas do not get the same prompts.
    assert set(first.filter(pl.col("persona_id") == "a")["prompt_id"]) != set(
        first.filter(pl.col("persona_id") == "b")["prompt_id"]
    )


def test_sizes_shrink_in_proportion_when_prompts_run_short() -> None:
    assert PairSizes(100, 50, 50).fitted(3000, 868) == PairSizes(100, 50, 50)
    assert PairSizes(100, 50, 50).fitted(30, 7) == PairSizes(20, 10, 7)
    with pytest.raises(ValueError, match="more train"):
        assign_prompts(["a"], TRAIN[:3], HELDOUT, PairSizes(3, 1, 0), seed=0)


def test_paper_scale_plan() -> None:
    models = dict.fromkeys(("base", "critique", "revision", "judge"), "openai:gpt-4o")
    templates = load_templates("paper")

    def plan(shared_base: bool) -> CallPlan:
        return plan_calls(
            1586, PairSizes(), n_train_prompts=3000, n_heldout_prompts=868,
            templates=templates, models=models, shared_base=shared_base,
        )  # fmt: skip

    shared = plan(True)
    assert shared.n_pairs == 317_200
    steps = {s.step: s for s in shared.steps}
    assert steps["critique"].calls == steps["revision"].calls == 317_200
    assert steps["judge"].calls == 634_400
    # 1,586 personas drawing 150 of 3,000 leave almost no train prompt unused.
    expected = expected_unique(3000, 150, 1586) + expected_unique(868, 50, 1586)
    assert steps["base"].calls == round(expected) == 3868
    assert shared.base_calls_saved == 317_200 - 3868
    per_pair = plan(False)
    assert per_pair.calls - shared.calls == shared.base_calls_saved
    assert per_pair.cost_usd > shared.cost_usd > 0
    price = 2.50 / 1e6, 10.00 / 1e6  # gpt-4o input / output per token
    judge = steps["judge"]
    assert judge.cost_usd == pytest.approx(
        judge.prompt_tokens * price[0] + judge.completion_tokens * price[1]
    )
    assert "| judge | openai:gpt-4o | 634,400 |" in shared.table()


def test_report_counts_per_split_and_leaves_out_undecided_pairs() -> None:
    frame = pl.DataFrame(
        {
            "split": ["train"] * 4 + ["test_seen"] * 2 + ["test_unseen"],
            "persona_id": ["p0", "p0", "p1", "p1", "p0", "p0", "p2"],
            "prompt_id": ["q0", "q1", "q0", "q1", "q2", "q3", "q4"],
            "judge_p_chosen": [0.9, 0.8, 0.3, 0.5, 0.7, 0.6, 0.5],
            "judge_prefers_chosen": [True, True, False, None, True, True, None],
        }
    )
    report = verification_report(frame, "scripted:judge")
    train = report["splits"]["train"]
    assert (train["pairs"], train["judged"], train["undecided"], train["prefer_chosen"]) == (
        4,
        3,
        1,
        2,
    )
    assert train["share_prefer_chosen"] == pytest.approx(2 / 3, abs=1e-4)
    assert (train["personas"], train["prompts"]) == (2, 2)
    assert train["ci95_low"] <= 2 / 3 <= train["ci95_high"]
    # Two judged pairs of one persona are one cluster: no interval (Wilson would give one).
    seen = report["splits"]["test_seen"]
    assert (seen["judged"], seen["personas"], seen["ci95_low"]) == (2, 1, None)
    assert report["splits"]["test_unseen"]["share_prefer_chosen"] is None
    assert report["overall"]["judged"] == 5 and report["judge_model"] == "scripted:judge"
    assert "n/a" in verification_markdown(report)


def test_share_interval_resamples_personas_not_pairs() -> None:
    # 20 personas x 10 pairs on 10 shared prompts; a persona's judge always decides the same
    # way (15 prefer y_w, 5 do not). The pairs carry the information of 20 personas, not 200
    # independent judgments: the interval must be much wider than Wilson over pairs.
    personas = [f"p{i}" for i in range(20) for _ in range(10)]
    frame = pl.DataFrame(
        {
            "split": ["train"] * 200,
            "persona_id": personas,
            "prompt_id": [f"q{j}" for _ in range(20) for j in range(10)],
            "judge_p_chosen": [0.9] * 200,
            "judge_prefers_chosen": [int(p[1:]) % 4 != 0 for p in personas],
        }
    )
    overall = verification_report(frame, "scripted:judge")["overall"]
    assert overall["share_prefer_chosen"] == pytest.approx(0.75)
    width = overall["ci95_high"] - overall["ci95_low"]
    wilson_low, wilson_high = wilson_interval(150, 200)
    assert width > 2.5 * (wilson_high - wilson_low)
    assert overall["ci95_low"] <= 0.75 <= overall["ci95_high"]

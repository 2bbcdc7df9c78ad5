from __future__ import annotations

import math

import polars as pl
import pytest

from persona_testbed.preferences import (
    CallPlan,
    PairSizes,
    assign_prompts,
    expected_unique,
    load_templates,
    plan_calls,
    verification_report,
    wilson_interval,
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


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_wilson_interval_matches_the_formula() -> None:
    assert wilson_interval(8, 10) == pytest.approx(_wilson(8, 10))
    assert wilson_interval(0, 0) is None


def test_report_counts_per_split_and_leaves_out_undecided_pairs() -> None:
    frame = pl.DataFrame(
        {
            "split": ["train"] * 4 + ["test_seen"] * 2 + ["test_unseen"],
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
    assert (train["ci95_low"], train["ci95_high"]) == pytest.approx(_wilson(2, 3), abs=1e-4)
    assert report["splits"]["test_unseen"]["share_prefer_chosen"] is None
    assert report["overall"]["judged"] == 5 and report["judge_model"] == "scripted:judge"

"""The LOO stage with scripted models: a planted signal, outputs, resumability, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.agreement import LooConfig, run_loo_stage
from persona_testbed.agreement.loo_analysis import attribute_table, pair_kappas
from persona_testbed.agreement.loo_stage import (
    ATTRIBUTES_MD,
    ATTRIBUTES_PARQUET,
    BOXPLOT_PNG,
    ITEMS_PARQUET,
    KAPPAS_PARQUET,
    LABELS_PARQUET,
    PAIRS_PARQUET,
    STAGE,
    SUMMARY_JSON,
)
from persona_testbed.errors import ConfigMismatchError, InputError
from persona_testbed.llm import ChatRequest

from .helpers import make_run, political_views_only, roleplay_script, scripted_client

PLANTED = ["age", "sex", "political views", "religion", "lifestyle"]


def _config(**overrides: object) -> LooConfig:
    values: dict[str, object] = {
        "attributes": PLANTED,
        "pairs": 5,
        "questions": 6,
        "model": "scripted:a",
        "resamples": 200,
    }
    values.update(overrides)
    return LooConfig.model_validate(values)


def test_planted_political_views_signal_is_ranked_most_influential(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=12, prompts=8)
    client = scripted_client(roleplay_script(political_views_only), tmp_path)
    result = run_loo_stage(run, _config(), client=client)
    table = result.table.sort("influence_rank")
    assert table["attribute"][0] == "political views"
    views = table.row(0, named=True)
    # Every choice flips once the views are shown: no agreement at all, kappa below 0.
    assert views["observed_agreement"] == pytest.approx(0.0)
    assert views["kappa_high"] < 0
    assert views["mean_abs_delta_p"] == pytest.approx(0.8)
    others = table.filter(pl.col("attribute") != "political views")
    assert others["kappa_mean"].to_list() == pytest.approx([1.0] * 4)
    assert others["mean_abs_delta_p"].to_list() == pytest.approx([0.0] * 4)
    assert (table["n_pairs"] == 5).all()
    assert result.stats["influence_ranking"]["scripted:a"][0] == "political views"


def test_both_annotators_label_the_same_items(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    client = scripted_client(roleplay_script(political_views_only), tmp_path)
    result = run_loo_stage(
        run, _config(attributes=["religion"], pairs=3, questions=4), client=client
    )
    # One item per (pair, question): A = the answer refined for P, B = the baseline answer.
    assert result.items.height == 3 * 4
    assert (result.items["refined_for"] == "without").all()
    assert result.items["answer_a"].str.contains(r"\[refined\]").all()
    assert result.items["answer_b"].str.starts_with("A plain answer").all()
    labels = result.labels
    assert labels.height == 3 * 4 * 2
    by_role = labels.group_by("item_id").agg(pl.col("role").sort())
    assert all(roles == ["with", "without"] for roles in by_role["role"].to_list())
    # Kappa is computed over each pair's 4 items.
    assert (result.kappas["n_items"] == 4).all()


def test_outputs_manifest_and_summary(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    client = scripted_client(roleplay_script(political_views_only), tmp_path)
    run_loo_stage(
        run, _config(attributes=["political views", "age"], pairs=2, questions=3), client=client
    )
    for name in (
        PAIRS_PARQUET,
        ITEMS_PARQUET,
        LABELS_PARQUET,
        KAPPAS_PARQUET,
        ATTRIBUTES_PARQUET,
        ATTRIBUTES_MD,
        BOXPLOT_PNG,
        SUMMARY_JSON,
    ):
        assert run.file(name).is_file(), name
    assert run.file(BOXPLOT_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = run.stage_record(STAGE)
    assert record is not None and record.complete
    assert record.models == ["scripted:a"]
    assert record.usage["scripted:a"].calls > 0
    summary = json.loads(run.file(SUMMARY_JSON).read_text())
    assert summary["figures"][BOXPLOT_PNG]["models"] == ["scripted:a"]
    assert summary["stats"]["pairs"] == 4
    markdown = run.file(ATTRIBUTES_MD).read_text()
    assert markdown.splitlines()[2].startswith("| scripted:a | 1 | political views |")


def test_rerun_repeats_no_model_call_and_refuses_another_config(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    config = _config(attributes=["sex"], pairs=2, questions=3)
    first = scripted_client(roleplay_script(political_views_only), tmp_path)
    run_loo_stage(run, config, client=first)
    again = scripted_client(roleplay_script(political_views_only), tmp_path)
    result = run_loo_stage(run, config, client=again)
    assert again.usage["scripted:a"].calls == 0
    assert again.usage["scripted:a"].cache_hits > 0
    assert result.kappas.height == 2
    with pytest.raises(ConfigMismatchError, match="changed: pairs"):
        run_loo_stage(run, _config(attributes=["sex"], pairs=3, questions=3), client=again)


def test_refine_for_both_makes_two_items_per_question(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    client = scripted_client(roleplay_script(political_views_only), tmp_path)
    result = run_loo_stage(
        run, _config(attributes=["age"], pairs=2, questions=3, refine_for="both"), client=client
    )
    assert result.items.height == 2 * 3 * 2
    assert sorted(result.items["refined_for"].unique().to_list()) == ["with", "without"]


def test_several_annotator_models(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    refiner = scripted_client(roleplay_script(political_views_only), tmp_path, "scripted:a")
    indifferent = scripted_client(roleplay_script(lambda _: True), tmp_path, "scripted:b")
    config = _config(
        attributes=["political views"],
        pairs=3,
        questions=4,
        annotators=["scripted:a", "scripted:b"],
    )
    result = run_loo_stage(
        run,
        config,
        client=refiner,
        annotator_clients={"scripted:a": refiner, "scripted:b": indifferent},
    )
    by_model = {row["annotator"]: row for row in result.table.iter_rows(named=True)}
    assert by_model["scripted:a"]["observed_agreement"] == pytest.approx(0.0)
    assert by_model["scripted:a"]["kappa_mean"] < 0
    # Always prefers the refined answer: constant identical labels -> kappa 0/0, missing (not
    # averaged as 1) and counted; PABAK says what happened: no choice changed.
    assert by_model["scripted:b"]["kappa_mean"] is None
    assert (
        by_model["scripted:b"]["pairs_degenerate"] == by_model["scripted:b"]["pairs_undefined"] == 3
    )
    assert by_model["scripted:b"]["pabak_mean"] == pytest.approx(1.0)
    record = run.stage_record(STAGE)
    assert record is not None and record.models == ["scripted:a", "scripted:b"]


def test_questions_file(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    questions = tmp_path / "questions.txt"
    questions.write_text("Is tax too high?\n\nShould zoos exist?\n")
    client = scripted_client(roleplay_script(political_views_only), tmp_path)
    result = run_loo_stage(
        run, _config(attributes=["age"], pairs=1, questions_file=questions), client=client
    )
    assert sorted(result.items["question"].to_list()) == ["Is tax too high?", "Should zoos exist?"]
    assert sorted(result.items["prompt_id"].to_list()) == ["q0001", "q0002"]


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    run.file("prompts.parquet").unlink()
    client = scripted_client(roleplay_script(political_views_only), tmp_path)
    with pytest.raises(InputError, match=r"prompts.parquet: prompts not found"):
        run_loo_stage(run, _config(), client=client)
    run.file("personas.parquet").unlink()
    with pytest.raises(InputError, match=r"personas.parquet: personas not found"):
        run_loo_stage(run, _config(), client=client)
    assert run.stage_record(STAGE) is None
    assert not run.file(BOXPLOT_PNG).exists()


def test_all_revisions_empty_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")

    def empty_revisions(request: ChatRequest) -> object:
        if "Revise the COMPLETION" in request.messages[-1].content:
            return "REVISED PREFERENCE:\nDONE"
        return roleplay_script(political_views_only)(request)

    client = scripted_client(empty_revisions, tmp_path)
    with pytest.raises(Exception, match="no LOO item to label"):
        run_loo_stage(run, _config(attributes=["age"], pairs=1, questions=2), client=client)
    # A fresh run directory whose first stage fails loses its manifest too (run/rundir.py).
    assert not run.manifest_path.exists() or run.stage_record(STAGE) is None
    assert not run.file(LABELS_PARQUET).exists()


def test_config_rejects_names_and_count_together() -> None:
    with pytest.raises(ValueError, match="not both"):
        LooConfig(attributes=["age"], n_attributes=2)


def _labels(pairs: dict[str, tuple[str, str]]) -> pl.DataFrame:
    """LOO labels from per-pair label strings (without, with); "-" is an item with no label.
    Pair ids are "<attribute>/<n>"."""
    rows = []
    for pair_id, (without, with_) in pairs.items():
        for role, labels in (("without", without), ("with", with_)):
            for index, label in enumerate(labels):
                rows.append(
                    {
                        "annotator": "m",
                        "attribute": pair_id.split("/")[0],
                        "pair_id": pair_id,
                        "item_id": f"{pair_id}:{index}",
                        "role": role,
                        "label": None if label == "-" else label,
                        "p_a": {"A": 0.9, "B": 0.1, "-": 0.5}[label],
                    }
                )
    return pl.DataFrame(rows)


def test_influence_is_ranked_on_pabak_not_on_prevalence_sensitive_kappa() -> None:
    # "skewed" changes 1 choice in 10 but its labels are mostly A: kappa 0 (one role is
    # constant), observed agreement 0.9. "balanced" changes 3 in 10 with balanced labels:
    # kappa 0.4, observed agreement 0.7. Ranked on kappa (the old rule) "skewed" came first.
    # "constant" never changes anything and always says A: kappa 0/0 (undefined; the old
    # default reported 1.0); "tied" has two items without a label, left out and counted.
    labels = _labels(
        {
            "skewed/1": ("AAAAAAAAAB", "AAAAAAAAAA"),
            "balanced/1": ("AAAAABBBBB", "AABBBBBBBB"),
            "constant/1": ("AAAAAAAAAA", "AAAAAAAAAA"),
            "tied/1": ("AB-ABABABA", "ABA-BABABB"),
        }
    )
    kappas = pair_kappas(labels)
    table = attribute_table(kappas, resamples=50).sort("influence_rank")
    assert table["attribute"].to_list() == ["balanced", "tied", "skewed", "constant"]
    rows = {row["attribute"]: row for row in table.iter_rows(named=True)}
    assert rows["balanced"]["pabak_mean"] == pytest.approx(0.4)
    assert rows["balanced"]["kappa_mean"] == pytest.approx(0.4)
    assert rows["skewed"]["pabak_mean"] == pytest.approx(0.8)
    assert rows["skewed"]["kappa_mean"] == pytest.approx(0.0)
    assert rows["skewed"]["observed_agreement"] == pytest.approx(0.9)
    # AC1: pi_A = 19/20, p_e = 2 * 0.95 * 0.05 = 0.095 -> (0.9 - 0.095) / 0.905.
    assert rows["skewed"]["ac1_mean"] == pytest.approx(0.805 / 0.905)
    # Undefined kappa: missing, counted, never averaged as 1.
    assert rows["constant"]["kappa_mean"] is None
    assert rows["constant"]["pairs_undefined"] == rows["constant"]["pairs_degenerate"] == 1
    assert rows["constant"]["pabak_mean"] == pytest.approx(1.0)
    # Items either role left unlabelled are out of every statistic, and counted.
    assert rows["tied"]["items_unlabelled"] == 2
    assert rows["tied"]["items_per_pair"] == 8
    assert rows["tied"]["observed_agreement"] == pytest.approx(7 / 8)

"""The model/human agreement stage with scripted annotators and a human labels file."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngImageFile
from sklearn.metrics import cohen_kappa_score

from persona_testbed.agreement import MAJORITY_ANNOTATOR, ModelsConfig, run_models_stage
from persona_testbed.agreement.models_stage import (
    HUMAN_PAIRWISE_PARQUET,
    HUMANS_HISTOGRAMS_PNG,
    ITEMS_PARQUET,
    LABELS_PARQUET,
    MATRIX_PNG,
    MODELS_HISTOGRAMS_PNG,
    MODELS_MATRIX_PNG,
    PAIRWISE_PARQUET,
    PER_PERSONA_PARQUET,
    STAGE,
    SUMMARY_JSON,
)
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.llm import ChatRequest, LLMClient

from .helpers import (
    make_run,
    odd,
    persona_value,
    question_of,
    refined_shown_first,
    roleplay_script,
    scripted_client,
)


def _always(_: ChatRequest) -> bool:
    return True


def _by_question(request: ChatRequest) -> bool:
    return not odd(question_of(request))


def _by_party(request: ChatRequest) -> bool:
    return (persona_value(request, "political views") == "Democrat") != odd(question_of(request))


SCRIPTS = {"scripted:a": _always, "scripted:b": _by_question, "scripted:c": _by_party}


def _clients(tmp_path: Path, names: list[str]) -> dict[str, LLMClient]:
    return {name: scripted_client(roleplay_script(SCRIPTS[name]), tmp_path, name) for name in names}


def _config(**overrides: object) -> ModelsConfig:
    values: dict[str, object] = {"annotators": ["scripted:b", "scripted:c"], "resamples": 200}
    values.update(overrides)
    return ModelsConfig.model_validate(values)


def test_two_models_kappa_matches_their_labels(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=6, pairs_per_persona=4)
    result = run_models_stage(
        run, _config(), clients=_clients(tmp_path, ["scripted:b", "scripted:c"])
    )
    labels = pl.read_parquet(run.file(LABELS_PARQUET))
    assert labels.height == 2 * 24
    # Canonical order: answer A is the pair's chosen answer.
    assert labels["answer_a"].str.starts_with("[refined]").all()
    wide = labels.pivot("annotator", index="item_id", values="label").sort("item_id")
    expected = cohen_kappa_score(wide["scripted:b"].to_list(), wide["scripted:c"].to_list())
    pairwise = pl.read_parquet(run.file(PAIRWISE_PARQUET))
    assert pairwise["kappa"][0] == pytest.approx(expected)
    assert pairwise["n_items"][0] == 24 and pairwise["n_personas"][0] == 6
    per_persona = pl.read_parquet(run.file(PER_PERSONA_PARQUET))
    assert per_persona.height == 6
    assert result.agreement.fleiss is None
    for name in (ITEMS_PARQUET, MATRIX_PNG, MODELS_HISTOGRAMS_PNG, SUMMARY_JSON):
        assert run.file(name).is_file(), name
    assert not run.file(HUMANS_HISTOGRAMS_PNG).exists()
    record = run.stage_record(STAGE)
    assert record is not None and record.models == ["scripted:b", "scripted:c"]


def test_three_models_fleiss_alpha_and_figures_name_the_models(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=6, pairs_per_persona=4)
    names = ["scripted:a", "scripted:b", "scripted:c"]
    run_models_stage(run, _config(annotators=names), clients=_clients(tmp_path, names))
    summary = json.loads(run.file(SUMMARY_JSON).read_text())
    agreement = summary["agreement"]
    assert agreement["fleiss_kappa"]["value"] is not None
    assert agreement["krippendorff_alpha"]["n_items"] == 24
    assert len(agreement["pairwise"]) == 3
    # scripted:a always prefers the chosen answer: kappa with anyone is 0 (one constant rater).
    assert summary["stats"]["pairwise_kappa"]["scripted:a | scripted:b"] == pytest.approx(0.0)
    assert summary["stats"]["share_a_by_annotator"]["scripted:a"] == 1.0
    for name in (MATRIX_PNG, MODELS_HISTOGRAMS_PNG):
        assert summary["figures"][name]["models"] == names
        with Image.open(run.file(name)) as image:
            assert isinstance(image, PngImageFile)
            assert image.text["Models"] == ", ".join(names)


def test_sampling_personas_and_items_is_seeded(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=8, pairs_per_persona=5)
    clients = _clients(tmp_path, ["scripted:b", "scripted:c"])
    first = run_models_stage(run, _config(personas=3, items=2, seed=4), clients=clients)
    assert first.items["persona_id"].n_unique() == 3
    assert first.items.height == 6
    again = run_models_stage(run, _config(personas=3, items=2, seed=4), clients=clients)
    assert again.items.equals(first.items)


def _human_labels(run_items: pl.DataFrame, path: Path) -> Path:
    """Three humans per persona who agree with scripted:b except one who always says A."""
    rows = []
    for row in run_items.iter_rows(named=True):
        b_label = "B" if odd(row["question"]) else "A"
        for h, label in enumerate((b_label, b_label, "A")):
            rows.append(
                {
                    "study_id": "s1",
                    "annotator": f"{row['persona_id']}-h{h}",
                    "annotator_kind": "human",
                    "persona_id": row["persona_id"],
                    "item_id": row["item_id"],
                    "question": row["question"],
                    "answer_a": row["answer_a"],
                    "answer_b": row["answer_b"],
                    "label": label,
                    "justification": "because",
                    "displayed_order": "AB",
                    "answered_at": "2025-01-01T00:00:00",
                }
            )
    pl.DataFrame(rows).write_csv(path)
    return path


def test_humans_restrict_items_and_give_majority_and_baseline(tmp_path: Path) -> None:
    from persona_testbed.contracts import preference_items as run_items

    run = make_run(tmp_path / "run", personas=6, pairs_per_persona=4)
    labelled = run_items(run.path).filter(pl.col("persona_id").is_in(["p000", "p001", "p002"]))
    labelled = labelled.filter(pl.col("item_id").str.ends_with("q3").not_())
    humans = _human_labels(labelled, tmp_path / "labels.csv")
    names = ["scripted:b", "scripted:c"]
    result = run_models_stage(
        run, _config(humans=humans, majority=2), clients=_clients(tmp_path, names)
    )
    assert result.items.height == 9  # only the items humans labelled
    agreement = result.agreement
    assert agreement.annotators == [MAJORITY_ANNOTATOR, *names]
    vs_b = agreement.pairwise.filter(pl.col("annotator_2") == "scripted:b").row(0, named=True)
    assert vs_b["annotator_1"] == MAJORITY_ANNOTATOR
    # The majority follows scripted:b's rule, which gives these 9 items one label: agreement
    # on every item, and a kappa of 0/0, missing and flagged (it used to be reported as 1.0).
    assert vs_b["observed_agreement"] == pytest.approx(1.0)
    assert vs_b["kappa"] is None and vs_b["degenerate"]
    assert agreement.humans is not None and agreement.humans.annotators == 9
    assert agreement.humans.majority.items_with_majority == 9
    for name in (HUMANS_HISTOGRAMS_PNG, MODELS_MATRIX_PNG, HUMAN_PAIRWISE_PARQUET):
        assert run.file(name).is_file(), name
    written = pl.read_parquet(run.file(LABELS_PARQUET))
    assert set(written["annotator_kind"].unique()) == {"human", "model", "majority"}


def test_human_item_not_in_the_run_comes_from_the_labels_file(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, pairs_per_persona=2)
    extra = pl.DataFrame(
        {
            "persona_id": ["p001"],
            "item_id": ["custom-1"],
            "question": ["Is Pluto a planet?"],
            "answer_a": ["[refined] yes, in spirit"],
            "answer_b": ["No."],
        }
    )
    items = pl.concat(
        [run_items_frame(run.path).select(extra.columns), extra], how="vertical_relaxed"
    )
    humans = _human_labels(
        items.with_columns(pl.lit("x").alias("persona_text")), tmp_path / "h.csv"
    )
    result = run_models_stage(
        run, _config(humans=humans), clients=_clients(tmp_path, ["scripted:b", "scripted:c"])
    )
    custom = result.items.filter(pl.col("item_id") == "custom-1").row(0, named=True)
    assert custom["question"] == "Is Pluto a planet?"
    assert custom["persona_text"].splitlines()[0].startswith("age: ")


def run_items_frame(run: Path) -> pl.DataFrame:
    from persona_testbed.contracts import preference_items as run_items

    return run_items(run)


def test_human_label_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, pairs_per_persona=2)
    clients = _clients(tmp_path, ["scripted:b", "scripted:c"])
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("annotator,persona_id,item_id,label\nh1,p001,nowhere,A\n")
    with pytest.raises(InputError, match="item 'nowhere' of persona 'p001' is not in prefer"):
        run_models_stage(run, _config(humans=unknown), clients=clients)
    wrong_persona = tmp_path / "wrong.csv"
    wrong_persona.write_text("annotator,persona_id,item_id,label\nh1,p002,p001-q0,A\n")
    with pytest.raises(InputError, match="belongs to persona 'p001'"):
        run_models_stage(run, _config(humans=wrong_persona), clients=clients)
    swapped = tmp_path / "swapped.csv"
    swapped.write_text(
        "annotator,persona_id,item_id,label,answer_a\nh1,p001,p001-q0,A,something else\n"
    )
    with pytest.raises(InputError, match="answer_a of item 'p001-q0' differs"):
        run_models_stage(run, _config(humans=swapped), clients=clients)
    assert run.stage_record(STAGE) is None


def test_missing_preferences_and_config_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=3, pairs_per_persona=2)
    run.file("preferences.parquet").unlink()
    with pytest.raises(InputError, match=r"preferences\.parquet: preference pairs not found"):
        run_models_stage(run, _config(), clients=_clients(tmp_path, ["scripted:b", "scripted:c"]))
    with pytest.raises(ValueError, match="needs two annotator models"):
        ModelsConfig(annotators=["scripted:b"])
    with pytest.raises(ValueError, match="listed twice"):
        ModelsConfig(annotators=["scripted:b", "scripted:b"])


def test_undecided_and_tied_model_labels_are_counted_and_left_out(tmp_path: Path) -> None:
    base = roleplay_script(_by_question)
    minimum_wage = "minimum wage"

    def sometimes_silent(request: ChatRequest) -> object:
        # On one question: no mass on A/B when the refined answer is listed second (the other
        # order alone would say "A" with 0.9, P(A) 0.70 under the old averaging).
        if request.top_logprobs and minimum_wage in question_of(request):
            if not refined_shown_first(request):
                return ("Hmm", {"Hmm": 1.0})
            return ("A", {"A": 0.9, "B": 0.1})
        return base(request)

    clients = {
        "scripted:b": scripted_client(sometimes_silent, tmp_path, "scripted:b"),
        "scripted:c": scripted_client(
            roleplay_script(SCRIPTS["scripted:c"]), tmp_path, "scripted:c"
        ),
    }
    run = make_run(tmp_path / "run", personas=6, pairs_per_persona=4)
    result = run_models_stage(run, _config(), clients=clients)
    labels = pl.read_parquet(run.file(LABELS_PARQUET))
    silent = labels.filter(
        (pl.col("annotator") == "scripted:b") & pl.col("question").str.contains(minimum_wage)
    )
    assert silent.height == 6  # one item per persona
    assert silent["label"].null_count() == 6
    assert (silent["no_label"] == "undecided").all()
    stats = json.loads(run.file(SUMMARY_JSON).read_text())["stats"]
    assert stats["labels_undecided"] == 6
    assert stats["unlabelled_by_annotator"] == {"scripted:b": 6, "scripted:c": 0}
    # Kappa rests on the 18 items both annotators labelled.
    assert result.agreement.pairwise["n_items"][0] == 24 - 6


def test_a_model_that_labels_nothing_is_a_clear_error(tmp_path: Path) -> None:
    # Always picks the first-listed answer with 0.7: every item ties at P(A) = 0.5 (before the
    # fix every tie was labelled "A" and the model looked like a perfect "A" annotator).
    first_listed = scripted_client(lambda r: ("A", {"A": 0.7, "B": 0.3}), tmp_path, "scripted:b")
    clients = {"scripted:b": first_listed, **_clients(tmp_path, ["scripted:c"])}
    run = make_run(tmp_path / "run", personas=3, pairs_per_persona=2)
    with pytest.raises(PersonaError, match=r"scripted:b gave no label: 6 of 6 items tied"):
        run_models_stage(run, _config(), clients=clients)

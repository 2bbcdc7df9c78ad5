"""The `agreement-models` stage (paper §4.2, Fig. 6-9): several role-play model annotators, and
optionally human annotators, label the same items; pairwise Cohen's kappa (pooled and per
persona), Fleiss' kappa and Krippendorff's alpha, human majority votes and the human baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from persona_testbed.agreement.annotator import TIE, UNDECIDED, label_items
from persona_testbed.agreement.compare import AgreementResult, compare_annotators
from persona_testbed.agreement.config import AgreementConfig, check_annotators
from persona_testbed.agreement.dpf import load_templates
from persona_testbed.agreement.items import items_for_humans, sample_items
from persona_testbed.agreement.labels import HUMAN, MAJORITY_ANNOTATOR, MODEL, read_labels
from persona_testbed.contracts import (
    AGREEMENT_HUMAN_PAIRWISE,
    AGREEMENT_HUMANS_HISTOGRAMS_PNG,
    AGREEMENT_ITEMS,
    AGREEMENT_LABELS,
    AGREEMENT_MATRIX_PNG,
    AGREEMENT_MODELS_HISTOGRAMS_PNG,
    AGREEMENT_MODELS_MATRIX_PNG,
    AGREEMENT_PAIRWISE,
    AGREEMENT_PER_PERSONA,
    AGREEMENT_SUMMARY,
    PERSONAS,
    PREFERENCES,
    persona_texts,
    preference_items,
)
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.llm import LLMClient
from persona_testbed.run import RunDir

STAGE = "agreement-models"
# The stage's files by their contract paths (contracts.artifacts spells them).
ITEMS_PARQUET = AGREEMENT_ITEMS.path
LABELS_PARQUET = AGREEMENT_LABELS.path
PAIRWISE_PARQUET = AGREEMENT_PAIRWISE.path
PER_PERSONA_PARQUET = AGREEMENT_PER_PERSONA.path
HUMAN_PAIRWISE_PARQUET = AGREEMENT_HUMAN_PAIRWISE.path
MATRIX_PNG = AGREEMENT_MATRIX_PNG.path
MODELS_MATRIX_PNG = AGREEMENT_MODELS_MATRIX_PNG.path
MODELS_HISTOGRAMS_PNG = AGREEMENT_MODELS_HISTOGRAMS_PNG.path
HUMANS_HISTOGRAMS_PNG = AGREEMENT_HUMANS_HISTOGRAMS_PNG.path
SUMMARY_JSON = AGREEMENT_SUMMARY.path


class ModelsConfig(AgreementConfig):
    """Everything that decides the model/human agreement outputs (recorded in the manifest)."""

    annotators: list[str] = Field(min_length=1, description="model specs that role-play")
    humans: Path | None = Field(None, description="human labels file (CSV or Parquet)")
    personas: int | None = Field(None, ge=1, description="seeded sample of personas (None: all)")
    items: int | None = Field(None, ge=1, description="items per persona (None: all)")
    split: str | None = Field(None, description="only preference pairs of this split")
    majority: int | None = Field(None, ge=1, description="humans a majority label needs")

    @model_validator(mode="after")
    def _enough_annotators(self) -> ModelsConfig:
        check_annotators(self.annotators)
        if self.humans is None and len(self.annotators) < 2:
            raise ValueError("model agreement needs two annotator models, or human labels")
        return self


@dataclass(frozen=True)
class ModelsResult:
    run: RunDir
    items: pl.DataFrame
    labels: pl.DataFrame
    agreement: AgreementResult
    figures: dict[str, list[str]]


def _items(run: RunDir, config: ModelsConfig) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The items to label, and the human labels when there are any."""
    preferences = PREFERENCES.file(run)
    if config.humans is None:
        items = preference_items(run, config.split)
        if items.is_empty():
            raise InputError(f"{preferences}: no usable preference pair to label")
        sampled = sample_items(
            items, personas=config.personas, per_persona=config.items, seed=config.seed
        )
        return sampled.drop("split"), None
    humans = read_labels(config.humans)
    humans = humans.filter(pl.col("annotator_kind") == HUMAN)
    if humans.is_empty():
        raise InputError(f"{config.humans}: no human labels (annotator_kind 'human')")
    known = preference_items(run, config.split) if preferences.is_file() else None
    texts = persona_texts(run)
    items = items_for_humans(humans, str(config.humans), known, texts)
    if config.personas is not None or config.items is not None:
        items = sample_items(
            items.with_columns(pl.lit(None, dtype=pl.String).alias("split")),
            personas=config.personas,
            per_persona=config.items,
            seed=config.seed,
        ).drop("split")
        humans = humans.join(items.select("persona_id", "item_id"), on=["persona_id", "item_id"])
    return items, humans


def _heatmap(
    names: list[str],
    matrix: np.ndarray,
    specs: Sequence[str],
    title: str,
    intervals: dict[tuple[str, str], tuple[float | None, float | None]],
    seed: int,
) -> Callable[[Path], None]:
    # Imported here, not at the top: matplotlib loads when a figure is drawn, not on import.
    from persona_testbed.agreement.plots import kappa_heatmap

    return lambda tmp: kappa_heatmap(
        names, matrix, Path(tmp), models=specs, title=title, intervals=intervals, seed=seed
    )


def _histograms(
    panels: list[tuple[str, list[float]]], specs: Sequence[str], title: str, seed: int
) -> Callable[[Path], None]:
    from persona_testbed.agreement.plots import kappa_histograms

    return lambda tmp: kappa_histograms(panels, Path(tmp), models=specs, title=title, seed=seed)


def _persona_kappas(per_persona: pl.DataFrame, first: str, second: str) -> list[float]:
    pair = (pl.col("annotator_1") == first) & (pl.col("annotator_2") == second)
    kappas: list[float] = per_persona.filter(pair)["kappa"].to_list()
    return kappas


def _figures(
    agreement: AgreementResult, specs: Sequence[str], humans: bool, seed: int
) -> dict[str, tuple[str, list[str], Any]]:
    """name -> (what it is, models that made it, writer)."""
    from persona_testbed.agreement.plots import short_name

    figures: dict[str, tuple[str, list[str], Any]] = {}
    names = agreement.annotators
    intervals = {
        (row["annotator_1"], row["annotator_2"]): (row["kappa_low"], row["kappa_high"])
        for row in agreement.pairwise.iter_rows(named=True)
    }
    matrix = agreement.kappa_matrix()
    label = "paper Fig. 6" if humans else "paper Fig. 8"
    title = "Cohen's kappa between role-play annotators (pooled, 95% CI)"
    figures[MATRIX_PNG] = (
        label,
        list(specs),
        _heatmap(names, matrix, specs, title, intervals, seed),
    )
    model_names = [name for name in names if name != MAJORITY_ANNOTATOR]
    if humans and len(model_names) >= 2:
        index = [names.index(name) for name in model_names]
        sub = matrix[index][:, index]
        title = "Cohen's kappa between model annotators (pooled, 95% CI)"
        figures[MODELS_MATRIX_PNG] = (
            "paper Fig. 8",
            list(specs),
            _heatmap(model_names, sub, specs, title, intervals, seed),
        )
    per_persona = agreement.per_persona
    model_panels = [
        (f"{short_name(a)} vs {short_name(b)}", _persona_kappas(per_persona, a, b))
        for a, b in agreement.pairwise.select("annotator_1", "annotator_2").iter_rows()
        if MAJORITY_ANNOTATOR not in (a, b)
    ]
    if model_panels:
        title = "Per-persona Cohen's kappa between model annotators"
        figures[MODELS_HISTOGRAMS_PNG] = (
            "paper Fig. 9",
            list(specs),
            _histograms(model_panels, specs, title, seed),
        )
    if humans and agreement.humans is not None:
        human_panels = [
            (
                f"human majority vs {short_name(b)}",
                _persona_kappas(per_persona, MAJORITY_ANNOTATOR, b),
            )
            for b in model_names
        ]
        human_panels.append(
            (
                "human vs human (same persona)",
                agreement.humans.pairwise["kappa"].to_list(),
            )
        )
        title = "Per-persona Cohen's kappa, human majority vs model annotators"
        figures[HUMANS_HISTOGRAMS_PNG] = (
            "paper Fig. 7",
            list(specs),
            _histograms(human_panels, specs, title, seed),
        )
    return figures


def run_models_stage(
    run: RunDir,
    config: ModelsConfig,
    *,
    clients: Mapping[str, LLMClient],
    force: bool = False,
) -> ModelsResult:
    """Every annotator model (spec -> client in `clients`) labels every item; agreement with
    each other and with the humans' majority labels."""
    missing = [spec for spec in config.annotators if spec not in clients]
    if missing:
        raise ValueError(f"no client for annotator {missing[0]}")
    items, humans = _items(run, config)
    if items.is_empty():
        raise InputError(f"{run.path}: no item to label")
    templates = load_templates(config.templates)
    inputs = [
        path
        for path in (PREFERENCES.file(run), PERSONAS.file(run), config.humans)
        if path is not None and path.is_file()
    ]
    manifest_config = {**config.model_dump(mode="json"), "templates_digest": templates.digest}
    with run.stage(STAGE, manifest_config, seed=config.seed, inputs=inputs, force=force) as stage:
        model_labels = [
            label_items(clients[spec], items, templates, threshold=config.threshold)
            for spec in config.annotators
        ]
        for spec, frame in zip(config.annotators, model_labels, strict=True):
            _check_some_label(spec, frame)
        frames = [*model_labels]
        if humans is not None:
            frames.append(humans)
        labels = pl.concat(frames, how="diagonal_relaxed")
        agreement = compare_annotators(
            # Ties and undecided model items have no label: counted in the stats, not compared.
            labels.filter(pl.col("label").is_not_null() | (pl.col("annotator_kind") != MODEL)),
            order=config.annotators,
            majority=config.majority,
            undefined=config.undefined_kappa,
            resamples=config.resamples,
            level=config.level,
            seed=config.seed,
        )
        figures = _figures(agreement, config.annotators, humans is not None, config.seed)
        stats = _stats(config, items, labels, agreement)
        AGREEMENT_ITEMS.write(stage, items)
        AGREEMENT_LABELS.write(
            stage, pl.concat([labels, _majority_rows(agreement)], how="diagonal_relaxed")
        )
        AGREEMENT_PAIRWISE.write(stage, agreement.pairwise)
        AGREEMENT_PER_PERSONA.write(stage, agreement.per_persona)
        if agreement.humans is not None:
            AGREEMENT_HUMAN_PAIRWISE.write(stage, agreement.humans.pairwise)
        for name, (_, _, writer) in figures.items():
            stage.write_file(name, writer)
        AGREEMENT_SUMMARY.write(
            stage,
            {
                "stage": STAGE,
                "config": manifest_config,
                "models": {"annotators": config.annotators},
                "figures": {
                    name: {"figure": what, "models": models}
                    for name, (what, models, _) in figures.items()
                },
                "stats": stats,
                "agreement": agreement.summary(),
            },
        )
        stage.record.stats.update(stats)
        usage = {}
        for spec in config.annotators:
            usage.update(clients[spec].usage)
        stage.add_usage(usage)
    return ModelsResult(
        run, items, labels, agreement, {name: models for name, (_, models, _) in figures.items()}
    )


def _check_some_label(spec: str, labels: pl.DataFrame) -> None:
    """A model that labels no item cannot be compared: say why instead of a bare count."""
    if labels.height and labels["label"].null_count() == labels.height:
        ties = int((labels["no_label"] == TIE).sum())
        raise PersonaError(
            f"annotator {spec} gave no label: {ties} of {labels.height} items tied at "
            f"P(A) = 0.5 and {labels.height - ties} were undecided (no mass on A/B in an "
            "order); check the model and its chat template"
        )


def _majority_rows(agreement: AgreementResult) -> pl.DataFrame:
    return agreement.labels.filter(pl.col("annotator") == MAJORITY_ANNOTATOR)


def _stats(
    config: ModelsConfig, items: pl.DataFrame, labels: pl.DataFrame, agreement: AgreementResult
) -> dict[str, Any]:
    model_rows = labels.filter(pl.col("annotator").is_in(config.annotators))
    stats: dict[str, Any] = {
        "annotators": config.annotators,
        "items": items.height,
        "personas": items["persona_id"].n_unique(),
        "label_ties": int((model_rows["no_label"] == TIE).sum()),
        "labels_undecided": int((model_rows["no_label"] == UNDECIDED).sum()),
        # logprobs, or constrained: a one-label answer from an endpoint without log-probabilities
        "choice_methods_by_annotator": {
            spec: {
                str(method): int(n)
                for method, n in model_rows.filter(pl.col("annotator") == spec)["choice_method"]
                .drop_nulls()
                .value_counts(sort=True)
                .iter_rows()
            }
            for spec in config.annotators
        }
        if "choice_method" in model_rows.columns
        else {},
        "unlabelled_by_annotator": {
            spec: int(model_rows.filter(pl.col("annotator") == spec)["label"].null_count())
            for spec in config.annotators
        },
        "share_a_by_annotator": {
            row["annotator"]: round(row["share_a"], 4)
            for row in agreement.labels.group_by("annotator", maintain_order=True)
            .agg((pl.col("label") == "A").mean().alias("share_a"))
            .iter_rows(named=True)
        },
        "pairwise_kappa": {
            f"{row['annotator_1']} | {row['annotator_2']}": row["kappa"]
            for row in agreement.pairwise.iter_rows(named=True)
        },
    }
    if agreement.fleiss is not None and agreement.alpha is not None:
        stats["fleiss_kappa"] = agreement.fleiss.value
        stats["krippendorff_alpha"] = agreement.alpha.value
    if agreement.humans is not None:
        stats["human_annotators"] = agreement.humans.annotators
        stats["items_with_human_majority"] = agreement.humans.majority.items_with_majority
    return stats

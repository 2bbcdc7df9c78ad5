"""The `agreement-loo` stage (paper §4.1, Fig. 5): personas without / with one attribute, DPF
refinement of baseline answers, both role-play annotators label the same items, agreement
per pair (kappa, observed agreement, PABAK, AC1, probability shift), distribution per attribute.

Protocol (docs/agreement.md): for attribute a, pair j is (P, P+a) from one real persona. Each
of the Q questions has one baseline answer (the bare question, no persona). For each pair the
baseline answers are critiqued and revised for the pair's persona (P, the original persona, by
default; `refine_for` can choose P+a or both), giving Q items (A = refined answer, B = the
baseline). An annotator role-playing P and one role-playing P+a (same model) label every item;
kappa between them over the Q items is the pair's agreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from persona_testbed.agreement.annotator import TIE, UNDECIDED, judge
from persona_testbed.agreement.config import AgreementConfig, check_annotators
from persona_testbed.agreement.dpf import (
    GenerationSettings,
    TemplateSet,
    generate_base_answers,
    load_templates,
    refine_answers,
)
from persona_testbed.agreement.labels import MODEL
from persona_testbed.agreement.loo_analysis import (
    WITH,
    WITHOUT,
    attribute_table,
    markdown_table,
    pair_kappas,
)
from persona_testbed.agreement.loo_personas import (
    CONTEXT_SIZE,
    LooPair,
    build_pairs,
    check_personas,
    choose_attributes,
)
from persona_testbed.agreement.questions import file_questions, run_questions, sample_questions
from persona_testbed.contracts import (
    LOO_ATTRIBUTES,
    LOO_ATTRIBUTES_MD,
    LOO_BOXPLOT,
    LOO_ITEMS,
    LOO_KAPPAS,
    LOO_LABELS,
    LOO_PAIRS,
    LOO_SUMMARY,
    PERSONAS,
)
from persona_testbed.errors import PersonaError
from persona_testbed.llm import LLMClient, ModelUsage
from persona_testbed.llm.specs import DEFAULT_MODEL
from persona_testbed.run import RunDir

STAGE = "agreement-loo"
# The stage's files by their contract paths (contracts.artifacts spells them).
PAIRS_PARQUET = LOO_PAIRS.path
ITEMS_PARQUET = LOO_ITEMS.path
LABELS_PARQUET = LOO_LABELS.path
KAPPAS_PARQUET = LOO_KAPPAS.path
ATTRIBUTES_PARQUET = LOO_ATTRIBUTES.path
ATTRIBUTES_MD = LOO_ATTRIBUTES_MD.path
BOXPLOT_PNG = LOO_BOXPLOT.path
SUMMARY_JSON = LOO_SUMMARY.path

RefineFor = Literal["original", "augmented", "both"]
REFINED_FOR_TEXT: dict[str, str] = {
    "original": "the persona without the attribute",
    "augmented": "the persona with the attribute",
    "both": "each persona of the pair",
}


class LooConfig(AgreementConfig):
    """Everything that decides the LOO outputs (recorded in the manifest)."""

    attributes: list[str] | None = Field(None, description="attribute names (default: sample)")
    n_attributes: int | None = Field(None, ge=1, description="seeded sample size (None: all)")
    pairs: int = Field(40, ge=1, description="persona pairs per attribute")
    questions: int = Field(20, ge=1, description="questions (items per pair)")
    context_size: int = Field(CONTEXT_SIZE, ge=1, description="attributes of P")
    questions_file: Path | None = None
    model: str = Field(DEFAULT_MODEL, description="model for base answers, critique, revision")
    annotators: list[str] = Field(default_factory=list, description="default: [model]")
    refine_for: RefineFor = "original"
    max_tokens: int = Field(256, ge=1, description="per base answer, critique and revision")
    temperature: float = Field(0.7, ge=0.0)

    @model_validator(mode="after")
    def _one_way_to_pick_attributes(self) -> LooConfig:
        if self.attributes and self.n_attributes is not None:
            raise ValueError("give attribute names or a number of attributes, not both")
        check_annotators(self.annotators)
        return self

    @property
    def annotator_specs(self) -> list[str]:
        return self.annotators or [self.model]

    @property
    def generation(self) -> GenerationSettings:
        """The preferences stage's sampling settings for the DPF steps."""
        return GenerationSettings(
            max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed
        )


@dataclass(frozen=True)
class LooResult:
    run: RunDir
    pairs: list[LooPair]
    items: pl.DataFrame
    labels: pl.DataFrame
    kappas: pl.DataFrame
    table: pl.DataFrame
    stats: dict[str, Any]


def _refine_targets(config: LooConfig) -> tuple[str, ...]:
    return {"original": (WITHOUT,), "augmented": (WITH,), "both": (WITHOUT, WITH)}[
        config.refine_for
    ]


def _persona_of(pair: LooPair, role: str) -> str:
    return pair.persona_without if role == WITHOUT else pair.persona_with


def build_items(
    client: LLMClient,
    templates: TemplateSet,
    pairs: Sequence[LooPair],
    questions: pl.DataFrame,
    config: LooConfig,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Baseline answers, then one DPF refinement per (pair, question, refined-for persona).

    Items whose base answer or revision came back empty are left out and counted."""
    texts = questions["text"].to_list()
    ids = questions["prompt_id"].to_list()
    bases = generate_base_answers(client, templates, texts, config.generation)
    usable = [i for i, base in enumerate(bases) if base]
    # Question-major order: consecutive prompts share the baseline answer as a prefix, which a
    # local model's KV cache reuses.
    jobs = [(pair, role, i) for i in usable for pair in pairs for role in _refine_targets(config)]
    refined = refine_answers(
        client,
        [_persona_of(pair, role) for pair, role, _ in jobs],
        [texts[i] for _, _, i in jobs],
        [bases[i] for _, _, i in jobs],
        templates,
        settings=config.generation,
    )
    rows = [
        {
            "item_id": f"{pair.pair_id}:{ids[i]}:{role}",
            "pair_id": pair.pair_id,
            "attribute": pair.attribute,
            "prompt_id": ids[i],
            "question": texts[i],
            "refined_for": role,
            "answer_a": result.revision,
            "answer_b": bases[i],
            "critique": result.critique,
        }
        for (pair, role, i), result in zip(jobs, refined, strict=True)
        if result.ok
    ]
    schema = {
        name: pl.String
        for name in (
            "item_id",
            "pair_id",
            "attribute",
            "prompt_id",
            "question",
            "refined_for",
            "answer_a",
            "answer_b",
            "critique",
        )
    }
    counts = {
        "questions": len(texts),
        "questions_without_base_answer": len(texts) - len(usable),
        "refinements": len(jobs),
        "refinements_empty": len(jobs) - len(rows),
    }
    return pl.DataFrame(rows, schema=schema), counts


def _by_pair(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["pair_id"], []).append(row)
    return list(groups.values())


def label_loo_items(
    client: LLMClient,
    templates: TemplateSet,
    pairs: Sequence[LooPair],
    items: pl.DataFrame,
    *,
    threshold: float,
) -> pl.DataFrame:
    """Both role-play annotators of each pair (P and P+a, this model) label all its items."""
    by_id = {pair.pair_id: pair for pair in pairs}
    # Persona-major order: consecutive prompts share the persona card (the system prompt), which
    # a local model's KV cache reuses.
    jobs = [
        (row, role)
        for pair_rows in _by_pair(items.to_dicts())
        for role in (WITHOUT, WITH)
        for row in pair_rows
    ]
    judgements = judge(
        client,
        [_persona_of(by_id[row["pair_id"]], role) for row, role in jobs],
        [row["question"] for row, _ in jobs],
        [row["answer_a"] for row, _ in jobs],
        [row["answer_b"] for row, _ in jobs],
        templates,
        threshold=threshold,
        description=f"LOO labels by {client.model_id}",
    )
    records = [
        {
            "annotator": client.model_id,
            "annotator_kind": MODEL,
            "persona_id": f"{row['pair_id']}/{role}",
            "item_id": row["item_id"],
            "pair_id": row["pair_id"],
            "attribute": row["attribute"],
            "role": role,
            "label": judgement.label,
            "p_a": judgement.p_a,
            "coverage": judgement.coverage,
            "no_label": judgement.no_label,
            "choice_method": judgement.method,
        }
        for (row, role), judgement in zip(jobs, judgements, strict=True)
    ]
    schema: dict[str, type[pl.DataType]] = {
        "annotator": pl.String,
        "annotator_kind": pl.String,
        "persona_id": pl.String,
        "item_id": pl.String,
        "pair_id": pl.String,
        "attribute": pl.String,
        "role": pl.String,
        "label": pl.String,
        "p_a": pl.Float64,
        "coverage": pl.Float64,
        "no_label": pl.String,
        "choice_method": pl.String,
    }
    return pl.DataFrame(records, schema=schema)


def _load_questions(run: RunDir, config: LooConfig) -> tuple[pl.DataFrame, Path]:
    if config.questions_file is not None:
        pool, source = file_questions(config.questions_file), config.questions_file
    else:
        pool, source = run_questions(run.path)
    return sample_questions(pool, config.questions, config.seed, str(source)), source


def _usage(clients: Sequence[LLMClient]) -> dict[str, ModelUsage]:
    usage: dict[str, ModelUsage] = {}
    for client in {id(c): c for c in clients}.values():
        usage.update(client.usage)
    return usage


def run_loo_stage(
    run: RunDir,
    config: LooConfig,
    *,
    client: LLMClient,
    annotator_clients: Mapping[str, LLMClient] | None = None,
    force: bool = False,
) -> LooResult:
    """Run the LOO study. `client` makes base answers and refinements; `annotator_clients`
    (spec -> client, default: `client` for config.model) role-play the annotators."""
    annotators = dict(annotator_clients or {config.model: client})
    missing = [spec for spec in config.annotator_specs if spec not in annotators]
    if missing:
        raise ValueError(f"no client for annotator {missing[0]}")
    personas_path = PERSONAS.file(run)
    personas = PERSONAS.read(run)
    check_personas(personas, str(personas_path))
    questions, questions_source = _load_questions(run, config)
    templates = load_templates(config.templates)
    attributes = choose_attributes(
        personas,
        names=config.attributes,
        count=config.n_attributes,
        seed=config.seed,
        context_size=config.context_size,
    )
    pairs = build_pairs(
        personas, attributes, pairs=config.pairs, seed=config.seed, context_size=config.context_size
    )
    manifest_config = {**config.model_dump(mode="json"), "templates_digest": templates.digest}
    # Imported here, not at the top: matplotlib loads when a figure is drawn, not on import.
    from persona_testbed.agreement.plots import loo_boxplot

    with run.stage(
        STAGE,
        manifest_config,
        seed=config.seed,
        inputs=[personas_path, questions_source],
        force=force,
    ) as stage:
        items, counts = build_items(client, templates, pairs, questions, config)
        if items.is_empty():
            raise PersonaError(
                f"{run.path}: no LOO item to label: every base answer or revision by "
                f"{config.model} came back empty"
            )
        labels = pl.concat(
            [
                label_loo_items(
                    annotators[spec], templates, pairs, items, threshold=config.threshold
                )
                for spec in config.annotator_specs
            ]
        )
        kappas = pair_kappas(labels, undefined=config.undefined_kappa)
        table = attribute_table(
            kappas, seed=config.seed, resamples=config.resamples, level=config.level
        )
        stats = _stats(config, attributes, pairs, items, labels, kappas, table, counts)
        models = sorted({config.model, *config.annotator_specs})
        note = (
            f"{len(pairs)} pairs over {len(attributes)} attributes, {counts['questions']} "
            f"questions; answers refined for {REFINED_FOR_TEXT[config.refine_for]} by "
            f"{config.model}"
        )
        pairs_frame = pl.DataFrame([pair.as_row() for pair in pairs])
        LOO_PAIRS.write(stage, pairs_frame)
        LOO_ITEMS.write(stage, items)
        LOO_LABELS.write(stage, labels)
        LOO_KAPPAS.write(stage, kappas)
        LOO_ATTRIBUTES.write(stage, table)
        LOO_ATTRIBUTES_MD.write(
            stage, lambda tmp: Path(tmp).write_text(markdown_table(table), "utf-8")
        )
        LOO_BOXPLOT.write(
            stage,
            lambda tmp: loo_boxplot(
                kappas, table, Path(tmp), models=models, note=note, seed=config.seed
            ),
        )
        LOO_SUMMARY.write(
            stage,
            {
                "stage": STAGE,
                "config": manifest_config,
                "models": {"refinement": config.model, "annotators": config.annotator_specs},
                "figures": {BOXPLOT_PNG: {"figure": "paper Fig. 5", "models": models}},
                "stats": stats,
                "attributes": table.to_dicts(),
            },
        )
        stage.record.stats.update(stats)
        stage.add_usage(_usage([client, *annotators.values()]))
    return LooResult(run, pairs, items, labels, kappas, table, stats)


def _stats(
    config: LooConfig,
    attributes: Sequence[str],
    pairs: Sequence[LooPair],
    items: pl.DataFrame,
    labels: pl.DataFrame,
    kappas: pl.DataFrame,
    table: pl.DataFrame,
    counts: dict[str, int],
) -> dict[str, Any]:
    per_attribute = {a: sum(p.attribute == a for p in pairs) for a in attributes}
    ranking: dict[str, list[str]] = {}
    for row in table.sort("annotator", "influence_rank").iter_rows(named=True):
        ranking.setdefault(row["annotator"], []).append(row["attribute"])
    return {
        "attributes": list(attributes),
        "pairs": len(pairs),
        "pairs_per_attribute": per_attribute,
        "attributes_short_of_pairs": sorted(
            a for a, n in per_attribute.items() if n < config.pairs
        ),
        **counts,
        "items": items.height,
        "labels": labels.height,
        "label_ties": int((labels["no_label"] == TIE).sum()),
        "labels_undecided": int((labels["no_label"] == UNDECIDED).sum()),
        "mean_label_coverage": float(np.mean(labels["coverage"].to_numpy())),
        "label_choice_methods": {
            str(m): int(n) for m, n in labels["choice_method"].value_counts(sort=True).iter_rows()
        },
        "pairs_scored": kappas.height,
        "pairs_degenerate": int(kappas["degenerate"].sum()),
        "pairs_kappa_undefined": int((kappas["kappa"].is_nan() | kappas["degenerate"]).sum()),
        "influence_statistic": "pabak",
        "influence_ranking": ranking,
    }

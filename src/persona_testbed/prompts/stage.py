"""The `prompts` stage: read a source -> rule filters -> LLM controversy filter -> topics
(embed, cluster, label) -> stratified train/held-out split -> `prompts.parquet`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from persona_testbed import contracts
from persona_testbed.contracts import PROMPTS
from persona_testbed.errors import InputError
from persona_testbed.llm.progress import status
from persona_testbed.llm.specs import DEFAULT_MODEL
from persona_testbed.prompts.controversy import score_controversy
from persona_testbed.prompts.filters import DropReason, rule_drop_reasons, word_count
from persona_testbed.prompts.sources import read_demo, read_prism, read_questions
from persona_testbed.prompts.split import TRAIN_FRACTION, stratified_split
from persona_testbed.prompts.topics import (
    cluster_embeddings,
    cluster_labels,
    tag_agreement,
    top_words,
)
from persona_testbed.run import RunDir
from persona_testbed.seeding import child_rng, child_seed

if TYPE_CHECKING:
    from persona_testbed.llm import LLMClient
    from persona_testbed.prompts.embedding import Embedder

STAGE = "prompts"
# The stage's files by their contract paths (contracts.artifacts spells them).
PROMPTS_PARQUET = PROMPTS.path
TOPICS_JSON = contracts.TOPICS_JSON.path
TOPICS_PNG = contracts.TOPICS_PNG.path
# The embedded 135M model rarely puts more than 0.6 on "yes" even for plainly contested
# questions, so the default keeps questions the model leans towards calling contested
# (measured on the demo set: see docs/prompts.md). Raise it for a stronger model.
DEFAULT_CONTROVERSY_THRESHOLD = 0.5

SourceKind = Literal["prism", "questions", "demo"]


class PromptsConfig(BaseModel):
    """Everything that decides `prompts.parquet` (recorded in the manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: SourceKind = "demo"
    path: Path | None = None
    text_column: str = "text"
    id_column: str | None = None
    topic_column: str | None = None
    min_words: int = Field(5, ge=0)
    max_prompts: int | None = Field(
        None, ge=1, description="curate a seeded sample of this many source prompts (None: all)"
    )
    controversy_threshold: float = Field(DEFAULT_CONTROVERSY_THRESHOLD, ge=0.0, le=1.0)
    model: str = DEFAULT_MODEL
    clusters: int | None = Field(None, ge=1, description="None: choose k by silhouette")
    train_fraction: float = Field(TRAIN_FRACTION, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _path_for_files(self) -> PromptsConfig:
        if self.source != "demo" and self.path is None:
            raise ValueError(f"the {self.source} source needs a file")
        return self

    @property
    def uses_llm(self) -> bool:
        return self.controversy_threshold > 0

    def manifest_config(self, embedder_name: str) -> dict[str, Any]:
        config = self.model_dump(mode="json")
        if not self.uses_llm:
            config["model"] = None  # no model call decides anything
        config["embedder"] = embedder_name
        return config


def load_source(config: PromptsConfig) -> pl.DataFrame:
    """The source's prompts; with `max_prompts`, a seeded sample of them in source order (a
    sample, not the first rows: a file's order often follows its topics or its authors)."""
    frame = _read_source(config)
    if config.max_prompts is None or frame.height <= config.max_prompts:
        return frame
    rng = child_rng(config.seed, "prompts/max_prompts")
    keep = np.sort(rng.choice(frame.height, size=config.max_prompts, replace=False))
    return frame[keep]


def _read_source(config: PromptsConfig) -> pl.DataFrame:
    if config.source == "demo":
        return read_demo()
    assert config.path is not None
    if config.source == "prism":
        return read_prism(config.path)
    return read_questions(
        config.path,
        text_column=config.text_column,
        id_column=config.id_column,
        topic_column=config.topic_column,
    )


@dataclass(frozen=True)
class Curation:
    prompts: pl.DataFrame
    topics: dict[str, Any]
    stats: dict[str, Any]


def _controversy(
    frame: pl.DataFrame, config: PromptsConfig, client: LLMClient | None
) -> pl.DataFrame:
    passed = frame["drop_reason"].is_null()
    p_yes: list[float | None] = [None] * len(frame)
    coverage: list[float | None] = [None] * len(frame)
    undecided = [False] * len(frame)
    if config.uses_llm and passed.any():
        if client is None:
            raise InputError("the controversy filter needs a model (or --controversy-threshold 0)")
        if not client.backend.supports_logprobs:  # e.g. anthropic:: fail before any call
            raise InputError(
                f"the controversy filter needs log-probabilities, which {client.model_id} does "
                "not return; use a model that does, or --controversy-threshold 0"
            )
        indices = np.flatnonzero(passed.to_numpy())
        scores = score_controversy(client, frame["text"].gather(indices).to_list())
        for index, score in zip(indices, scores, strict=True):
            p_yes[index] = score.p_controversial
            coverage[index] = score.coverage
            undecided[index] = score.undecided
        if all(score.undecided for score in scores):
            # Every question without label mass means the endpoint returns no usable
            # log-probabilities: the filter would silently drop (or, before, keep) everything.
            raise InputError(
                f"the controversy filter got no probability on its answer labels for any of "
                f"{len(scores)} questions from {client.model_id}: the endpoint returns no usable "
                "log-probabilities; use a model that does, or --controversy-threshold 0"
            )
    frame = frame.with_columns(
        pl.Series("p_controversial", p_yes, dtype=pl.Float64),
        pl.Series("controversy_coverage", coverage, dtype=pl.Float64),
    )
    # An undecided question (no label mass in some order) is neither kept as controversial nor
    # judged uncontroversial: it is dropped under its own reason, so it is counted.
    return frame.with_columns(
        pl.when(pl.col("drop_reason").is_null() & pl.Series(undecided, dtype=pl.Boolean))
        .then(pl.lit(DropReason.CONTROVERSY_UNDECIDED.value))
        .when(
            pl.col("drop_reason").is_null()
            & (pl.col("p_controversial") < config.controversy_threshold)
        )
        .then(pl.lit(DropReason.NOT_CONTROVERSIAL.value))
        .otherwise(pl.col("drop_reason"))
        .alias("drop_reason")
    )


def _topics(
    kept: pl.DataFrame, config: PromptsConfig, embedder: Embedder
) -> tuple[pl.DataFrame, dict[str, Any]]:
    texts = kept["text"].to_list()
    embeddings = embedder.embed(texts)
    with status(f"clustering {len(texts):,} prompts into topics"):
        clustering = cluster_embeddings(
            embeddings, k=config.clusters, random_state=child_seed(config.seed, "kmeans")
        )
    words = top_words(texts, clustering.assignments, clustering.k)
    labels = cluster_labels(words)
    cluster_label = [labels[int(a)] for a in clustering.assignments]
    kept = kept.with_columns(
        pl.Series("cluster", clustering.assignments, dtype=pl.Int32),
        pl.Series("cluster_label", cluster_label, dtype=pl.String),
    )
    # A hand-written tag is the topic where the source has one; otherwise the cluster's label.
    kept = kept.with_columns(pl.coalesce("topic_tag", "cluster_label").alias("topic"))
    sizes = np.bincount(clustering.assignments, minlength=clustering.k)
    report: dict[str, Any] = {
        "embedder": embedder.name,
        "method": clustering.method,
        "k": clustering.k,
        "silhouette": None if clustering.silhouette is None else round(clustering.silhouette, 4),
        "silhouette_by_k": {str(k): v for k, v in clustering.silhouette_by_k.items()},
        "clusters": [
            {"cluster": c, "label": labels[c], "top_words": words[c], "size": int(sizes[c])}
            for c in range(clustering.k)
        ],
    }
    tagged = kept.filter(pl.col("topic_tag").is_not_null())
    if len(tagged) >= 2:
        report["agreement_with_tags"] = tag_agreement(
            tagged["topic_tag"].to_list(), tagged["cluster"].to_numpy()
        )
        crosstab = tagged.group_by("topic_tag", "cluster_label").len().sort("len", descending=True)
        report["tag_to_main_cluster"] = {
            row["topic_tag"]: row["cluster_label"]
            for row in crosstab.unique("topic_tag", keep="first", maintain_order=True).iter_rows(
                named=True
            )
        }
    return kept, report


OUTPUT_COLUMNS = (
    "prompt_id",
    "text",
    "source",
    "source_id",
    "topic",
    "split",
    "kept",
    "drop_reason",
    "topic_tag",
    "cluster",
    "cluster_label",
    "p_controversial",
    "controversy_coverage",
    "n_words",
    "conversation_type",
)


def curate(
    source: pl.DataFrame,
    config: PromptsConfig,
    *,
    client: LLMClient | None,
    embedder: Embedder,
) -> Curation:
    """Filter, label and split `source` (a frame from the `sources` readers)."""
    reasons = rule_drop_reasons(source["text"].to_list(), config.min_words)
    frame = source.with_columns(
        pl.Series("drop_reason", [r.value if r else None for r in reasons], dtype=pl.String),
        pl.col("text").map_elements(word_count, return_dtype=pl.Int32).alias("n_words"),
    )
    frame = _controversy(frame, config, client)
    frame = frame.with_columns(pl.col("drop_reason").is_null().alias("kept"))
    kept = frame.filter("kept")
    topics: dict[str, Any] = {"embedder": embedder.name, "k": 0, "clusters": []}
    if len(kept):
        kept, topics = _topics(kept, config, embedder)
        split = stratified_split(
            kept["topic"].to_list(), child_rng(config.seed, "split"), config.train_fraction
        )
        kept = kept.with_columns(pl.Series("split", split, dtype=pl.String))
    else:
        kept = kept.with_columns(
            pl.lit(None, pl.Int32).alias("cluster"),
            pl.lit(None, pl.String).alias("cluster_label"),
            pl.lit(None, pl.String).alias("topic"),
            pl.lit(None, pl.String).alias("split"),
        )
    dropped = frame.filter(~pl.col("kept")).with_columns(
        pl.lit(None, pl.Int32).alias("cluster"),
        pl.lit(None, pl.String).alias("cluster_label"),
        pl.col("topic_tag").alias("topic"),
        pl.lit(None, pl.String).alias("split"),
    )
    prompts = (
        pl.concat([kept.select(OUTPUT_COLUMNS), dropped.select(OUTPUT_COLUMNS)])
        .join(source.select("prompt_id").with_row_index("_order"), on="prompt_id")
        .sort("_order")
        .drop("_order")
    )
    return Curation(prompts, topics, curation_stats(prompts, topics, config))


def curation_stats(
    prompts: pl.DataFrame, topics: dict[str, Any], config: PromptsConfig
) -> dict[str, Any]:
    kept = prompts.filter("kept")
    drop_counts = prompts.filter(~pl.col("kept"))["drop_reason"].value_counts(sort=True)
    stats: dict[str, Any] = {
        "source": config.source,
        "prompts": len(prompts),
        "kept": len(kept),
        "dropped": len(prompts) - len(kept),
        "drop_reasons": {r["drop_reason"]: r["count"] for r in drop_counts.iter_rows(named=True)},
        "train": int((kept["split"] == "train").sum()),
        "heldout": int((kept["split"] == "heldout").sum()),
        "topics": kept["topic"].n_unique() if len(kept) else 0,
        "clusters": topics.get("k", 0),
        "controversy_threshold": config.controversy_threshold,
    }
    scored = prompts["p_controversial"].drop_nulls()
    if len(scored):
        stats["p_controversial_mean"] = round(float(scored.to_numpy().mean()), 4)
    if "agreement_with_tags" in topics:
        agreement = topics["agreement_with_tags"]
        stats["cluster_tag_ari"] = agreement["adjusted_rand_index"]
        stats["cluster_tag_nmi"] = agreement["normalized_mutual_info"]
    return stats


@dataclass(frozen=True)
class PromptsResult:
    run: RunDir
    prompts_path: Path
    stats: dict[str, Any]
    topics: dict[str, Any]


def run_prompts_stage(
    run: RunDir,
    config: PromptsConfig,
    *,
    client: LLMClient | None = None,
    embedder: Embedder | None = None,
    force: bool = False,
) -> PromptsResult:
    """Curate the prompts of `config`'s source into `run` (prompts.parquet, topics.json/png).

    The source is read and checked before the run directory is touched."""
    source = load_source(config)
    if embedder is None:
        from persona_testbed.prompts.embedding import MiniLMEmbedder

        embedder = MiniLMEmbedder()
    inputs = [config.path] if config.path is not None and config.path.is_file() else []
    # Imported here, not at the top: matplotlib loads when a figure is drawn, not on import.
    from persona_testbed.prompts.plots import plot_topic_distribution

    with run.stage(
        STAGE, config.manifest_config(embedder.name), seed=config.seed, inputs=inputs, force=force
    ) as stage:
        curation = curate(source, config, client=client, embedder=embedder)
        PROMPTS.write(stage, curation.prompts)
        contracts.TOPICS_JSON.write(stage, curation.topics)
        kept = curation.prompts.filter("kept")
        if len(kept):
            title = f"Topics of {len(kept)} kept prompts ({config.source})"
            # The topics come from the embedder; the classifier (when it ran) chose what is kept.
            models = [*([config.model] if client is not None else []), embedder.name]
            contracts.TOPICS_PNG.write(
                stage,
                lambda tmp: plot_topic_distribution(
                    kept, tmp, title, models=models, seed=config.seed
                ),
            )
        stage.record.stats.update(curation.stats)
        if client is not None and config.uses_llm:
            stage.add_usage(client.usage)
    return PromptsResult(run, PROMPTS.file(run), curation.stats, curation.topics)

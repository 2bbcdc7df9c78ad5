"""Prompts (paper §3.2, Fig. 3): PRISM / question-file / bundled demo sources, the rule and
LLM controversy filters, topic clustering with all-MiniLM-L6-v2, and the stratified split."""

from persona_testbed.prompts.controversy import ControversyScore, score_controversy, template_digest
from persona_testbed.prompts.embedding import Embedder, MiniLMEmbedder
from persona_testbed.prompts.filters import DropReason, normalize, rule_drop_reasons
from persona_testbed.prompts.sources import (
    demo_questions_path,
    read_demo,
    read_prism,
    read_questions,
)
from persona_testbed.prompts.split import (
    PAPER_TOTAL,
    PAPER_TRAIN,
    TRAIN_FRACTION,
    stratified_split,
    train_size,
)
from persona_testbed.prompts.stage import (
    DEFAULT_CONTROVERSY_THRESHOLD,
    PROMPTS_PARQUET,
    TOPICS_JSON,
    TOPICS_PNG,
    Curation,
    PromptsConfig,
    PromptsResult,
    curate,
    load_source,
    run_prompts_stage,
)
from persona_testbed.prompts.topics import (
    Clustering,
    cluster_embeddings,
    cluster_labels,
    tag_agreement,
    top_words,
)
from persona_testbed.seeding import child_rng, child_seed

__all__ = [
    "DEFAULT_CONTROVERSY_THRESHOLD",
    "PAPER_TOTAL",
    "PAPER_TRAIN",
    "PROMPTS_PARQUET",
    "TOPICS_JSON",
    "TOPICS_PNG",
    "TRAIN_FRACTION",
    "Clustering",
    "ControversyScore",
    "Curation",
    "DropReason",
    "Embedder",
    "MiniLMEmbedder",
    "PromptsConfig",
    "PromptsResult",
    "child_rng",
    "child_seed",
    "cluster_embeddings",
    "cluster_labels",
    "curate",
    "demo_questions_path",
    "load_source",
    "normalize",
    "read_demo",
    "read_prism",
    "read_questions",
    "rule_drop_reasons",
    "run_prompts_stage",
    "score_controversy",
    "stratified_split",
    "tag_agreement",
    "template_digest",
    "top_words",
    "train_size",
]

"""Every file a stage writes into a run directory: one object each, in stage order.

The objects are the only spelling of each file name in the code; docs/architecture.md shows
them as a table (tests/contracts/test_architecture_doc.py keeps the two in step).
"""

from __future__ import annotations

import polars as pl

from persona_testbed.contracts.artifact import (
    Artifact,
    Column,
    ColumnType,
    Document,
    Output,
    Table,
    columns,
)
from persona_testbed.contracts.persona import ATTRIBUTES, CENSUS_ATTRIBUTES

TEXT, INTEGER, NUMBER, BOOLEAN = (
    ColumnType.TEXT,
    ColumnType.INTEGER,
    ColumnType.NUMBER,
    ColumnType.BOOLEAN,
)
REPORT = "report"

# --- personas (census) -------------------------------------------------------------------


class PersonasTable(Table):
    """personas.parquet: readers also accept a file without some of the 33 attributes (they
    are "not applicable"), but not one without any."""

    def problem(self, frame: pl.DataFrame, *, writing: bool = False) -> str | None:
        if not any(name in frame.columns for name in ATTRIBUTES):
            return "none of the 33 persona attribute columns (e.g. 'age', 'sex') is present"
        return super().problem(frame, writing=writing)


PERSONAS = PersonasTable(
    path="personas.parquet",
    writer="personas",
    command="persona personas",
    what="personas",
    description="the personas: id, train/test split, the 33 attributes, the census record",
    readers=(
        "census-compare",
        "show",
        "preferences",
        "bench",
        "agreement-loo",
        "agreement-models",
        "annotate",
        "align",
    ),
    columns=(Column("persona_id"),),
    optional=(
        Column("split", TEXT),
        *columns(*ATTRIBUTES),
        *columns("source_state", "source_serialno", type=TEXT),
        Column("source_sporder"),
        Column("weight", NUMBER),
    ),
)
PERSONAS_JSONL = Table(
    path="personas.jsonl",
    writer="personas",
    command="persona personas",
    what="personas (JSONL)",
    description="the same personas as JSON lines, for reading by eye or other tools",
    columns=(Column("persona_id"), Column("split", TEXT), *columns(*ATTRIBUTES)),
)
CENSUS_REFERENCE = Table(
    path="census_reference.parquet",
    writer="personas",
    command="persona personas",
    what="census reference shares",
    description="the pool's weighted shares per attribute and category (pums / raked / target)",
    readers=("census-compare",),
    columns=(
        *columns("attribute", "reference", "category", type=TEXT),
        Column("universe_min_age", INTEGER),
        Column("share", NUMBER),
    ),
)
PRUNED_PERSONAS = Table(
    path="personas_pruned.jsonl",
    writer="personas",
    command="persona personas",
    what="pruned personas",
    description="records the LLM consistency judge pruned, with its reason (LLM runs only)",
)
JOINT_REFERENCE = Table(
    path="census_joint_reference.parquet",
    writer="personas",
    command="persona personas",
    what="joint census reference",
    description="the pool's weighted two-way shares for the joint checks",
    readers=("census-compare",),
    columns=(
        *columns("table", "reference", "category_a", "category_b", type=TEXT),
        Column("share", NUMBER),
    ),
)
BEFORE_PRUNING = Table(
    path="personas_before_pruning.parquet",
    writer="personas",
    command="persona personas",
    what="records before pruning",
    description="the first draw's census records before the LLM judge pruned it (LLM runs only)",
    readers=("census-compare",),
    columns=columns(*CENSUS_ATTRIBUTES),
)

# --- census comparison -------------------------------------------------------------------

CENSUS_COMPARE_CSV = Table(
    path="census_compare.csv",
    writer="census-compare",
    command="persona census-compare",
    what="census comparison",
    description="TVD and chi-square of the personas against each census reference",
    readers=(REPORT,),
    columns=(
        *columns("attribute", "reference", type=TEXT),
        Column("n", INTEGER),
        *columns("tvd", "iid_noise_tvd_mean", "iid_noise_tvd_p95", type=NUMBER),
    ),
)
CENSUS_COMPARE_MD = Output(
    path="census_compare.md",
    writer="census-compare",
    command="persona census-compare",
    what="census comparison (Markdown)",
    description="the comparison table with its header (target, limits, controlled rows)",
)
CENSUS_COMPARE_PNG = Output(
    path="census_compare.png",
    writer="census-compare",
    command="persona census-compare",
    what="census comparison figure",
    description="personas vs census shares per attribute (paper Fig. 2)",
    readers=(REPORT,),
)
CENSUS_JOINT_CSV = Table(
    path="census_joint.csv",
    writer="census-compare",
    command="persona census-compare",
    what="joint census comparison",
    description="TVD of each two-way table, before and after LLM pruning",
    readers=(REPORT,),
    columns=(
        *columns("table", "reference", type=TEXT),
        *columns("tvd", "iid_noise_tvd_p95", type=NUMBER),
        Column("above_iid_p95", BOOLEAN),
    ),
)
CENSUS_JOINT_PNG = Output(
    path="census_joint.png",
    writer="census-compare",
    command="persona census-compare",
    what="joint census figure",
    description="TVD of each two-way table against the i.i.d. noise band",
    readers=(REPORT,),
)

# --- prompts -----------------------------------------------------------------------------

PROMPTS = Table(
    path="prompts.parquet",
    writer="prompts",
    command="persona prompts",
    what="prompts",
    description="every prompt read, kept or dropped (with the reason), topic and split",
    readers=("preferences", "bench", "agreement-loo", REPORT),
    columns=(
        *columns("prompt_id", "text", "topic", "split", type=TEXT),
        Column("kept", BOOLEAN),
    ),
    optional=(Column("drop_reason", TEXT),),
)
TOPICS_JSON = Document(
    path="prompts/topics.json",
    writer="prompts",
    command="persona prompts",
    what="prompt topics",
    description="the topic clusters: label, top words and size of each",
    keys=("embedder", "k", "clusters"),
)
TOPICS_PNG = Output(
    path="prompts/topics.png",
    writer="prompts",
    command="persona prompts",
    what="topic figure",
    description="kept prompts per topic (paper Fig. 3)",
    readers=(REPORT,),
)

# --- preferences -------------------------------------------------------------------------

PREFERENCES = Table(
    path="preferences.parquet",
    writer="preferences",
    command="persona preferences",
    what="preference pairs",
    description="one row per (persona, prompt): y_w = chosen (revised), y_l = rejected (base)",
    readers=("agreement-models", "annotate", "align", REPORT),
    columns=columns("pair_id", "persona_id", "prompt", "chosen", "rejected", type=TEXT),
    optional=(
        *columns("persona_text", "prompt_id", "topic", "split", "critique", type=TEXT),
        Column("judge_prefers_chosen", BOOLEAN),
    ),
)
VERIFICATION = Document(
    path="preferences/verification.json",
    writer="preferences",
    command="persona preferences",
    what="preference verification",
    description="share of pairs the persona judge prefers y_w, per split, with CIs",
    readers=(REPORT,),
    keys=("judge_model", "overall", "splits"),
)
VERIFICATION_MD = Output(
    path="preferences/verification.md",
    writer="preferences",
    command="persona preferences",
    what="preference verification (Markdown)",
    description="the verification as a table",
)
PREFERENCES_HF = Output(
    path="preferences_hf",
    writer="preferences",
    command="persona preferences",
    what="Hugging Face dataset",
    description="the pairs as a Hugging Face DatasetDict (train / test / heldout) with a card",
)

# --- bench -------------------------------------------------------------------------------

BENCH_SAMPLES = Table(
    path="bench/samples.parquet",
    writer="bench",
    command="persona bench",
    what="bench samples",
    description="every answer of every model and method, with the critic's verdict",
    columns=(
        *columns("model", "judge_model", "method", "pair_id", "persona_id", type=TEXT),
        *columns("prompt_id", "answer", type=TEXT),
        Column("sample_index", INTEGER),
        Column("passed", BOOLEAN),
    ),
)
BENCH_LOO_SAMPLES = Table(
    path="bench/loo_samples.parquet",
    writer="bench",
    command="persona bench --loo all",
    what="bench leave-one-out samples",
    description="answers with one attribute removed from the persona (--loo only)",
    columns=(
        *columns("model", "method", "pair_id", "removed_attribute", type=TEXT),
        Column("sample_index", INTEGER),
        Column("passed", BOOLEAN),
    ),
)
BENCH_SUMMARY = Document(
    path="bench/summary.json",
    writer="bench",
    command="persona bench",
    what="bench summary",
    description="config, models, per-method results, slices, drops and LOO in one file",
    keys=("config", "models", "judge_model", "results"),
)
BENCH_LEADERBOARD = Table(
    path="bench/leaderboard.csv",
    writer="bench",
    command="persona bench",
    what="bench leaderboard",
    description="accuracy (with CI) and pass@k per model and method",
    readers=(REPORT,),
    columns=(
        *columns("model", "judge_model", "method", type=TEXT),
        *columns("accuracy", "ci_low", "ci_high", type=NUMBER),
        Column("pairs", INTEGER),
    ),
)
BENCH_LEADERBOARD_MD = Output(
    path="bench/leaderboard.md",
    writer="bench",
    command="persona bench",
    what="bench leaderboard (Markdown)",
    description="the leaderboard with its notes",
)
BENCH_SLICES = Table(
    path="bench/slices.csv",
    writer="bench",
    command="persona bench",
    what="bench slices",
    description="accuracy per persona slice (attribute value) per model and method",
    readers=(REPORT,),
    columns=(
        *columns("model", "method", "slice", type=TEXT),
        Column("accuracy", NUMBER),
        Column("pairs", INTEGER),
    ),
)
BENCH_DROPS = Table(
    path="bench/attribute_drops.csv",
    writer="bench",
    command="persona bench --methods persona-summary",
    what="attribute drops",
    description="share of persona summaries that omit each attribute",
    readers=(REPORT,),
    columns=(
        *columns("model", "attribute", type=TEXT),
        Column("summaries", INTEGER),
        Column("drop_rate", NUMBER),
    ),
)
BENCH_DROPS_MD = Output(
    path="bench/attribute_drops.md",
    writer="bench",
    command="persona bench --methods persona-summary",
    what="attribute drops (Markdown)",
    description="the attribute drops as a table",
)
BENCH_LOO = Table(
    path="bench/loo.csv",
    writer="bench",
    command="persona bench --loo all",
    what="bench leave-one-out",
    description="accuracy change when one attribute is removed, with a paired bootstrap CI",
    readers=(REPORT,),
    columns=(
        *columns("model", "attribute", type=TEXT),
        Column("pairs", INTEGER),
        *columns("delta", "delta_ci_low", "delta_ci_high", type=NUMBER),
    ),
)
BENCH_FIGURES = tuple(
    Output(
        path=f"bench/{name}.png",
        writer="bench",
        command="persona bench",
        what=f"bench figure {name}",
        description=description,
        readers=(REPORT,),
    )
    for name, description in (
        ("accuracy_by_method", "accuracy per method and model (paper Fig. 10)"),
        ("pass_at_k", "pass@k per method (paper Fig. 12)"),
        ("slices", "accuracy per persona slice"),
        ("attribute_drops", "attribute drop rates of the persona summary (paper Fig. 11)"),
        ("loo", "leave-one-attribute-out accuracy deltas"),
    )
)
BENCH_ACCURACY_PNG, BENCH_PASSK_PNG, BENCH_SLICES_PNG, BENCH_DROPS_PNG, BENCH_LOO_PNG = (
    BENCH_FIGURES
)

# --- agreement: leave-one-out ------------------------------------------------------------

LOO_PAIRS = Table(
    path="agreement/loo/pairs.parquet",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO persona pairs",
    description="each (persona without, persona with) pair and the attribute that differs",
    columns=(*columns("pair_id", "attribute", "persona_without", "persona_with", type=TEXT),),
)
LOO_ITEMS = Table(
    path="agreement/loo/items.parquet",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO items",
    description="the questions with the base and refined answers of each pair",
    columns=(*columns("item_id", "pair_id", "attribute", "question", type=TEXT),),
)
LOO_LABELS = Table(
    path="agreement/loo/labels.parquet",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO labels",
    description="each annotator's label per item and role (without / with the attribute)",
    columns=(
        *columns("annotator", "item_id", "pair_id", "attribute", "role", "label", type=TEXT),
        Column("p_a", NUMBER),
    ),
)
LOO_KAPPAS = Table(
    path="agreement/loo/kappas.parquet",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO kappas",
    description="Cohen's kappa (and PABAK, AC1) between the two roles, per pair and annotator",
    columns=(
        *columns("annotator", "attribute", "pair_id", type=TEXT),
        *columns("kappa", "pabak", type=NUMBER),
        Column("degenerate", BOOLEAN),
    ),
)
LOO_ATTRIBUTES = Table(
    path="agreement/loo/attributes.parquet",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO attribute table",
    description="per attribute: mean kappa / PABAK with CIs, ranked by influence (paper Fig. 5)",
    readers=(REPORT,),
    columns=(*columns("annotator", "attribute", type=TEXT), Column("n_pairs", INTEGER)),
)
LOO_ATTRIBUTES_MD = Output(
    path="agreement/loo/attributes.md",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO attribute table (Markdown)",
    description="the attribute table as Markdown",
)
LOO_BOXPLOT = Output(
    path="agreement/loo/kappa_boxplot.png",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO kappa box plot",
    description="kappa per attribute (paper Fig. 5)",
    readers=(REPORT,),
)
LOO_SUMMARY = Document(
    path="agreement/loo/summary.json",
    writer="agreement-loo",
    command="persona agreement loo",
    what="LOO summary",
    description="config, models, figures, stats and the attribute table",
    keys=("stage", "config", "models", "figures", "stats", "attributes"),
)

# --- agreement: models and humans --------------------------------------------------------

ITEM_COLUMNS: tuple[str, ...] = (
    "persona_id",
    "persona_text",
    "item_id",
    "question",
    "answer_a",
    "answer_b",
)
AGREEMENT_ITEMS = Table(
    path="agreement/models/items.parquet",
    writer="agreement-models",
    command="persona agreement models",
    what="agreement items",
    description="the (persona, question, answer A, answer B) items the annotators labelled",
    columns=columns(*ITEM_COLUMNS, type=TEXT),
)
AGREEMENT_LABELS = Table(
    path="agreement/models/labels.parquet",
    writer="agreement-models",
    command="persona agreement models",
    what="agreement labels",
    description="every label (models, humans and the human majority), A or B per item",
    columns=columns("annotator", "annotator_kind", "persona_id", "item_id", "label", type=TEXT),
)
AGREEMENT_PAIRWISE = Table(
    path="agreement/models/pairwise.parquet",
    writer="agreement-models",
    command="persona agreement models",
    what="pairwise agreement",
    description="Cohen's kappa with CIs for each pair of annotators",
    readers=(REPORT,),
    columns=(
        *columns("annotator_1", "annotator_2", type=TEXT),
        *columns("kappa", "kappa_low", "kappa_high", type=NUMBER),
        Column("n_items", INTEGER),
    ),
)
AGREEMENT_PER_PERSONA = Table(
    path="agreement/models/per_persona.parquet",
    writer="agreement-models",
    command="persona agreement models",
    what="per-persona agreement",
    description="Cohen's kappa per persona and pair of annotators",
    columns=(
        *columns("persona_id", "annotator_1", "annotator_2", type=TEXT),
        Column("kappa", NUMBER),
        Column("n_items", INTEGER),
    ),
)
AGREEMENT_HUMAN_PAIRWISE = Table(
    path="agreement/models/human_pairwise.parquet",
    writer="agreement-models",
    command="persona agreement models --humans",
    what="agreement with humans",
    description="Cohen's kappa of each model against the human labels (with --humans only)",
    readers=(REPORT,),
    columns=(
        *columns("annotator_1", "annotator_2", type=TEXT),
        Column("kappa", NUMBER),
        Column("n_items", INTEGER),
    ),
)
AGREEMENT_FIGURES = tuple(
    Output(
        path=f"agreement/models/{name}.png",
        writer="agreement-models",
        command="persona agreement models",
        what=f"agreement figure {name}",
        description=description,
        readers=(REPORT,),
    )
    for name, description in (
        ("kappa_matrix", "pooled kappa between every pair of annotators (paper Fig. 6 / 8)"),
        ("kappa_matrix_models", "pooled kappa between the models, with --humans (paper Fig. 8)"),
        ("kappa_histograms_models", "per-persona kappa between models (paper Fig. 9)"),
        ("kappa_histograms_humans", "per-persona kappa, human majority vs models (paper Fig. 7)"),
    )
)
(
    AGREEMENT_MATRIX_PNG,
    AGREEMENT_MODELS_MATRIX_PNG,
    AGREEMENT_MODELS_HISTOGRAMS_PNG,
    AGREEMENT_HUMANS_HISTOGRAMS_PNG,
) = AGREEMENT_FIGURES
AGREEMENT_SUMMARY = Document(
    path="agreement/models/summary.json",
    writer="agreement-models",
    command="persona agreement models",
    what="agreement summary",
    description="config, annotators, figures, stats and overall agreement (Fleiss, alpha)",
    readers=(REPORT,),
    keys=("stage", "config", "models", "figures", "stats", "agreement"),
)

# --- the run as a whole ------------------------------------------------------------------

PIPELINE_JSON = Document(
    path="pipeline.json",
    writer="run",
    command="persona run",
    what="pipeline record",
    description="the config `persona run` ran and each stage's fingerprint (what to skip)",
    readers=("run",),
    keys=("fingerprints", "config"),
)
REPORT_HTML = Output(
    path="report/index.html",
    writer=REPORT,
    command="persona report",
    what="report",
    description="the self-contained HTML report of every section",
)

# --- align -------------------------------------------------------------------------------

ALIGN_LEADERBOARD = Table(
    path="align/leaderboard.csv",
    writer="align",
    command="persona align",
    what="align leaderboard",
    description="pairwise accuracy and log-loss (with CIs) per method and test split, and the "
    "gap over the persona-blind model",
    readers=(REPORT,),
    columns=(
        *columns("method", "kind", "split", type=TEXT),
        *columns("pairs", "personas", type=INTEGER),
        *columns("accuracy", "ci_low", "ci_high", "log_loss", type=NUMBER),
    ),
    optional=(
        *columns("log_loss_ci_low", "log_loss_ci_high", type=NUMBER),
        *columns("gap", "gap_ci_low", "gap_ci_high", type=NUMBER),
        Column("note", TEXT),
    ),
)
ALIGN_LEADERBOARD_MD = Output(
    path="align/leaderboard.md",
    writer="align",
    command="persona align",
    what="align leaderboard (Markdown)",
    description="the leaderboard with the pluralism diagnostic and notes",
)
ALIGN_SLICES = Table(
    path="align/slices.csv",
    writer="align",
    command="persona align",
    what="align slices",
    description="accuracy per persona attribute value, per method and test split",
    readers=(REPORT,),
    columns=(
        *columns("method", "split", "slice", "value", type=TEXT),
        *columns("accuracy", "ci_low", "ci_high", type=NUMBER),
        *columns("pairs", "personas", type=INTEGER),
    ),
)
ALIGN_ACCURACY_PNG = Output(
    path="align/accuracy.png",
    writer="align",
    command="persona align",
    what="align accuracy figure",
    description="accuracy per method and test split, with chance at 0.5",
    readers=(REPORT,),
)

ARTIFACTS: tuple[Artifact, ...] = (
    PERSONAS,
    PERSONAS_JSONL,
    CENSUS_REFERENCE,
    PRUNED_PERSONAS,
    JOINT_REFERENCE,
    BEFORE_PRUNING,
    CENSUS_COMPARE_CSV,
    CENSUS_COMPARE_MD,
    CENSUS_COMPARE_PNG,
    CENSUS_JOINT_CSV,
    CENSUS_JOINT_PNG,
    PROMPTS,
    TOPICS_JSON,
    TOPICS_PNG,
    PREFERENCES,
    VERIFICATION,
    VERIFICATION_MD,
    PREFERENCES_HF,
    BENCH_SAMPLES,
    BENCH_LOO_SAMPLES,
    BENCH_SUMMARY,
    BENCH_LEADERBOARD,
    BENCH_LEADERBOARD_MD,
    BENCH_SLICES,
    BENCH_DROPS,
    BENCH_DROPS_MD,
    BENCH_LOO,
    *BENCH_FIGURES,
    LOO_PAIRS,
    LOO_ITEMS,
    LOO_LABELS,
    LOO_KAPPAS,
    LOO_ATTRIBUTES,
    LOO_ATTRIBUTES_MD,
    LOO_BOXPLOT,
    LOO_SUMMARY,
    AGREEMENT_ITEMS,
    AGREEMENT_LABELS,
    AGREEMENT_PAIRWISE,
    AGREEMENT_PER_PERSONA,
    AGREEMENT_HUMAN_PAIRWISE,
    *AGREEMENT_FIGURES,
    AGREEMENT_SUMMARY,
    ALIGN_LEADERBOARD,
    ALIGN_LEADERBOARD_MD,
    ALIGN_SLICES,
    ALIGN_ACCURACY_PNG,
    PIPELINE_JSON,
    REPORT_HTML,
)

_BY_PATH: dict[str, Artifact] = {artifact.path: artifact for artifact in ARTIFACTS}


def artifact_at(path: str) -> Artifact | None:
    """The contract of the run-directory file at `path` (as a manifest lists it), if any."""
    return _BY_PATH.get(path.rstrip("/"))

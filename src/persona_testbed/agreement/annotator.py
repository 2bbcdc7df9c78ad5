"""The role-play annotator: a model, playing a persona, says which of two answers it prefers.

The prompt is the preferences stage's verification judge (the `judge` step of a template set),
so an annotator here is the same role-play evaluator that checked the preference data. Each
item is scored in both option orders (A/B and B/A) from the first-token probabilities of the
labels, and the probability that the persona prefers answer A is the mean over the two orders,
which cancels a small model's position bias. The label is "A" when that probability is at
least the threshold (0.5 by default), else "B", with two exceptions that get no label (null)
and a reason in `no_label`:

- "undecided": some order put no mass on either label token, so the other order alone would
  decide (the position bias the two orders are there to cancel);
- "tie": P(A) is exactly 0.5, no preference either way (not "A", as it used to be).

Unlabelled items are kept in the labels table, counted in the stage stats and left out of
every agreement statistic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from persona_testbed.agreement.dpf import (
    DEFAULT_TEMPLATES,
    TemplateSet,
    judge_choice,
    load_templates,
)
from persona_testbed.agreement.labels import MODEL, MODEL_LABEL_COLUMNS
from persona_testbed.contracts import ITEM_COLUMNS
from persona_testbed.errors import InputError
from persona_testbed.llm import Choice, ClientSettings, LLMClient
from persona_testbed.stages.pool import ModelPool

DEFAULT_THRESHOLD = 0.5


TIE = "tie"
UNDECIDED = "undecided"
# Averaged probabilities are sums of floats: a tie may be off by a few ulps.
_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Judgement:
    """P(the persona prefers answer A), averaged over both orders, and the label it gives
    (None, with the reason in `no_label`, for a tie or an undecided item)."""

    p_a: float
    coverage: float
    label: str | None
    no_label: str | None = None
    method: str = "logprobs"  # how the choice was scored: logprobs / constrained (llm.choice)


def label_from_probability(p_a: float, threshold: float = DEFAULT_THRESHOLD) -> str | None:
    """ "A" when p_a >= threshold, else "B"; None for an exact tie (p_a = 0.5)."""
    if abs(p_a - 0.5) <= _TIE_TOLERANCE:
        return None
    return "A" if p_a >= threshold else "B"


def judgement_of(choice: Choice, threshold: float = DEFAULT_THRESHOLD) -> Judgement:
    """The label of one averaged choice: undecided and tied items get none."""
    p_a = choice.probs[0]
    if choice.undecided:
        return Judgement(p_a, choice.coverage, None, UNDECIDED, choice.method)
    label = label_from_probability(p_a, threshold)
    return Judgement(p_a, choice.coverage, label, TIE if label is None else None, choice.method)


def judge(
    client: LLMClient,
    persona_texts: Sequence[str],
    questions: Sequence[str],
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    templates: TemplateSet,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    description: str = "role-play labels",
) -> list[Judgement]:
    """Role-play every (persona, question, answer A, answer B) and label it."""
    if not 0.0 < threshold < 1.0:
        raise InputError(f"label threshold {threshold}: must be between 0 and 1")
    items = [
        judge_choice(templates, persona, question, answer_a, answer_b)
        for persona, question, answer_a, answer_b in zip(
            persona_texts, questions, answers_a, answers_b, strict=True
        )
    ]
    choices = client.choose_both_orders_batch(items, description=description)
    return [judgement_of(choice, threshold) for choice in choices]


def check_items(items: pl.DataFrame, source: str = "items") -> None:
    missing = [name for name in ITEM_COLUMNS if name not in items.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(repr(m) for m in missing)}")
    for row_number, row in enumerate(items.select(ITEM_COLUMNS).iter_rows(named=True), start=1):
        for name in ITEM_COLUMNS:
            value = row[name]
            if value is None or not str(value).strip():
                raise InputError(f"{source}: row {row_number}: empty '{name}'")


def label_items(
    client: LLMClient,
    items: pl.DataFrame,
    templates: TemplateSet,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    description: str | None = None,
) -> pl.DataFrame:
    """One model's labels for every item (columns ITEM_COLUMNS), in the long labels format:
    annotator = the model spec, annotator_kind = "model", plus p_a, coverage, no_label
    (label null, no_label "tie" or "undecided", for items the model gave no label) and
    choice_method (logprobs, or constrained where the endpoint returns no log-probabilities)."""
    check_items(items)
    judgements = judge(
        client,
        items["persona_text"].to_list(),
        items["question"].to_list(),
        items["answer_a"].to_list(),
        items["answer_b"].to_list(),
        templates,
        threshold=threshold,
        description=description or f"labels by {client.model_id}",
    )
    frame = items.select(
        pl.lit(None, dtype=pl.String).alias("study_id"),
        pl.lit(client.model_id).alias("annotator"),
        pl.lit(MODEL).alias("annotator_kind"),
        pl.col("persona_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        "question",
        "answer_a",
        "answer_b",
        pl.Series("label", [j.label for j in judgements], dtype=pl.String),
        pl.lit(None, dtype=pl.String).alias("justification"),
        pl.lit("AB+BA").alias("displayed_order"),
        pl.lit(None, dtype=pl.String).alias("answered_at"),
        pl.Series("p_a", [j.p_a for j in judgements], dtype=pl.Float64),
        pl.Series("coverage", [j.coverage for j in judgements], dtype=pl.Float64),
        pl.Series("no_label", [j.no_label for j in judgements], dtype=pl.String),
        pl.Series("choice_method", [j.method for j in judgements], dtype=pl.String),
    )
    return frame.select(MODEL_LABEL_COLUMNS)


def label_items_with_models(
    items: pl.DataFrame,
    specs: Sequence[str],
    settings: ClientSettings | None = None,
    *,
    templates: TemplateSet | str = DEFAULT_TEMPLATES,
    threshold: float = DEFAULT_THRESHOLD,
) -> pl.DataFrame:
    """Every model in `specs` labels every item; the labels of all models, stacked.
    `templates` is a preferences template set (its `judge` prompt), by name or loaded."""
    if not specs:
        raise InputError("annotators: no model spec given")
    if len(set(specs)) != len(specs):
        raise InputError(f"annotators: a model spec is listed twice ({', '.join(specs)})")
    template_set = load_templates(templates) if isinstance(templates, str) else templates
    frames = []
    pool = ModelPool(settings or ClientSettings())
    for spec in specs:
        with pool.stage():  # one model's client open at a time
            frames.append(label_items(pool.get(spec), items, template_set, threshold=threshold))
    return pl.concat(frames)

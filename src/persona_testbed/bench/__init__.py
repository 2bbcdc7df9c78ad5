"""PERSONA Bench (paper §5, Fig. 10-12): how well a model personalizes its answers.

For (persona, question) pairs, the model under test answers with one of four methods; a critic
judges whether each answer still needs revising to be subtly personalized (accuracy = share
needing none), a second judge flags answers that name the persona's attributes. Reports pass@k,
summary attribute drops, accuracy by persona slice and leave-one-attribute-out deltas.
"""

from persona_testbed.bench.config import BenchConfig, parse_loo, parse_models
from persona_testbed.bench.critics import (
    CriticVerdict,
    JudgeItem,
    SubtletyFlag,
    Verdict,
    critic_messages,
    critic_verdicts,
    parse_verdict,
    subtlety_flags,
    verdict_from_structured,
)
from persona_testbed.bench.drops import attribute_mentioned, summary_mentions
from persona_testbed.bench.generate import (
    Answer,
    AnswerJob,
    GenerationSettings,
    answer_messages,
    generate_answers,
    summary_messages,
)
from persona_testbed.bench.methods import ALL_METHODS, Method, parse_cot, parse_methods
from persona_testbed.bench.metrics import MethodMetrics, Streams, method_metrics
from persona_testbed.bench.pairs import load_personas, load_prompts, sample_pairs
from persona_testbed.bench.passk import pass_at_k
from persona_testbed.bench.plan import PlanStep, plan_bench, plan_rows
from persona_testbed.bench.slices import DEFAULT_SLICE_ATTRIBUTES, SliceFilter, parse_slice
from persona_testbed.bench.stage import (
    SAMPLES,
    SUMMARY,
    BenchInputs,
    BenchResult,
    prepare_inputs,
    run_bench_stage,
)
from persona_testbed.bench.templates import TemplateSet, template_digest
from persona_testbed.estimation import Estimate, RateEstimate, bootstrap_mean, bootstrap_rate
from persona_testbed.templates import PromptTemplate

__all__ = [
    "ALL_METHODS",
    "DEFAULT_SLICE_ATTRIBUTES",
    "SAMPLES",
    "SUMMARY",
    "Answer",
    "AnswerJob",
    "BenchConfig",
    "BenchInputs",
    "BenchResult",
    "CriticVerdict",
    "Estimate",
    "GenerationSettings",
    "JudgeItem",
    "Method",
    "MethodMetrics",
    "PlanStep",
    "PromptTemplate",
    "RateEstimate",
    "SliceFilter",
    "Streams",
    "SubtletyFlag",
    "TemplateSet",
    "Verdict",
    "answer_messages",
    "attribute_mentioned",
    "bootstrap_mean",
    "bootstrap_rate",
    "critic_messages",
    "critic_verdicts",
    "generate_answers",
    "load_personas",
    "load_prompts",
    "method_metrics",
    "parse_cot",
    "parse_loo",
    "parse_methods",
    "parse_models",
    "parse_slice",
    "parse_verdict",
    "pass_at_k",
    "plan_bench",
    "plan_rows",
    "prepare_inputs",
    "run_bench_stage",
    "sample_pairs",
    "subtlety_flags",
    "summary_mentions",
    "summary_messages",
    "template_digest",
    "verdict_from_structured",
]

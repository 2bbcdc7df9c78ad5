"""Persona-specific preference pairs (paper §3.2, Fig. 4, Appendix B): per-persona prompt
sampling, base answers, Direct Principle Feedback critique and revision, the persona-judge
verification, and the Parquet / Hugging Face exports.

`refine_answers` (with the request builders) is the reusable DPF step for other stages.
"""

from persona_testbed.preferences.dpf import (
    GenerationSettings,
    Refined,
    StepOutput,
    base_answers,
    build_base_request,
    build_critique_request,
    build_revision_request,
    clean_critique,
    critique_answers,
    extract_revision,
    refine_answers,
    revise_answers,
)
from persona_testbed.preferences.export import build_dataset_dict, dataset_card
from persona_testbed.preferences.inputs import PromptPools, load_personas, load_prompt_pools
from persona_testbed.preferences.persona_judge import Judgment, judge_choice, judge_pairs
from persona_testbed.preferences.plan import (
    CHARS_PER_TOKEN,
    DEFAULT_PERSONA_CHARS,
    DEFAULT_QUESTION_CHARS,
    CallPlan,
    expected_unique,
    plan_calls,
)
from persona_testbed.preferences.sampling import SPLITS, PairSizes, assign_prompts
from persona_testbed.preferences.stage import (
    DEFAULT_CHUNK_PAIRS,
    HF_DIR,
    PREFERENCES_PARQUET,
    VERIFICATION_JSON,
    VERIFICATION_MD,
    PreferencesConfig,
    PreferencesResult,
    build_pairs,
    plan_for_run,
    run_preferences_stage,
)
from persona_testbed.preferences.templates import (
    TemplateSet,
    available_templates,
    load_templates,
    template_digest,
)
from persona_testbed.preferences.verification import (
    verification_markdown,
    verification_report,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_CHUNK_PAIRS",
    "DEFAULT_PERSONA_CHARS",
    "DEFAULT_QUESTION_CHARS",
    "HF_DIR",
    "PREFERENCES_PARQUET",
    "SPLITS",
    "VERIFICATION_JSON",
    "VERIFICATION_MD",
    "CallPlan",
    "GenerationSettings",
    "Judgment",
    "PairSizes",
    "PreferencesConfig",
    "PreferencesResult",
    "PromptPools",
    "Refined",
    "StepOutput",
    "TemplateSet",
    "assign_prompts",
    "available_templates",
    "base_answers",
    "build_base_request",
    "build_critique_request",
    "build_dataset_dict",
    "build_pairs",
    "build_revision_request",
    "clean_critique",
    "critique_answers",
    "dataset_card",
    "expected_unique",
    "extract_revision",
    "judge_choice",
    "judge_pairs",
    "load_personas",
    "load_prompt_pools",
    "load_templates",
    "plan_calls",
    "plan_for_run",
    "refine_answers",
    "revise_answers",
    "run_preferences_stage",
    "template_digest",
    "verification_markdown",
    "verification_report",
]

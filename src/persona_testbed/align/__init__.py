"""Pairwise preference prediction per persona (`persona align`): given (persona, prompt,
answer A, answer B), which answer does this persona prefer?

Methods fit on the `train` pairs of preferences.parquet and are scored on `test_seen` and
`test_unseen`, every pair in both answer orders: accuracy and log-loss with cluster-bootstrap
CIs over personas, slices by persona attribute, and whether the pairs test pluralism at all
(a persona-blind model as good as the persona-aware ones says they do not). Built-in methods:
a persona-blind and a persona-conditioned reward model and a group baseline; the preference
judge is a reference row; `register_method` adds your own (docs/align.md).
"""

from persona_testbed.align.config import DEFAULT_SLICES, AlignConfig, parse_methods
from persona_testbed.align.evaluate import (
    AWARE,
    BLIND,
    JUDGE,
    REFERENCE,
    Diagnostic,
    MethodRun,
    diagnostics,
    leaderboard,
    run_methods,
    slices,
)
from persona_testbed.align.features import (
    CachedEmbedder,
    HashingEmbedder,
    answer_features,
    make_embedder,
    text_features,
)
from persona_testbed.align.methods import (
    BUILTIN_METHODS,
    GROUP,
    PERSONA_BLIND,
    PERSONA_CONDITIONED,
    AlignMethod,
    BlindRewardModel,
    ConditionedRewardModel,
    FallbackError,
    GroupBaseline,
    MethodContext,
    MethodFactory,
    register_method,
    registered_methods,
    unregister_method,
)
from persona_testbed.align.pairs import (
    LABEL,
    PAIR_COLUMNS,
    TEST_SPLITS,
    AlignData,
    load_align_data,
)
from persona_testbed.align.stage import STAGE, AlignResult, run_align_stage

__all__ = [
    "AWARE",
    "BLIND",
    "BUILTIN_METHODS",
    "DEFAULT_SLICES",
    "GROUP",
    "JUDGE",
    "LABEL",
    "PAIR_COLUMNS",
    "PERSONA_BLIND",
    "PERSONA_CONDITIONED",
    "REFERENCE",
    "STAGE",
    "TEST_SPLITS",
    "AlignConfig",
    "AlignData",
    "AlignMethod",
    "AlignResult",
    "BlindRewardModel",
    "CachedEmbedder",
    "ConditionedRewardModel",
    "Diagnostic",
    "FallbackError",
    "GroupBaseline",
    "HashingEmbedder",
    "MethodContext",
    "MethodFactory",
    "MethodRun",
    "answer_features",
    "diagnostics",
    "leaderboard",
    "load_align_data",
    "make_embedder",
    "parse_methods",
    "register_method",
    "registered_methods",
    "run_align_stage",
    "run_methods",
    "slices",
    "text_features",
    "unregister_method",
]

"""Agreement studies (paper §4.1, §4.2, Fig. 5-9).

Role-play annotators (any model, playing a persona, scoring both answer orders), the
leave-one-out attribute-influence study, and model-vs-model / human-vs-model agreement:
Cohen's kappa (pooled and per persona), Fleiss' kappa, Krippendorff's alpha, PABAK and Gwet's
AC1, majority votes and bootstrap CIs over personas. `compare_annotators` is pure statistics on
a long labels table.
"""

from persona_testbed.agreement.annotator import (
    Judgement,
    judge,
    label_from_probability,
    label_items,
    label_items_with_models,
)
from persona_testbed.agreement.bootstrap import AgreementEstimate
from persona_testbed.agreement.compare import AgreementResult, HumanAgreement, compare_annotators
from persona_testbed.agreement.dpf import template_digest
from persona_testbed.agreement.labels import (
    LABEL_COLUMNS,
    MAJORITY_ANNOTATOR,
    MODEL_LABEL_COLUMNS,
    Majority,
    majority_vote,
    read_labels,
)
from persona_testbed.agreement.loo_analysis import attribute_table, pair_kappas
from persona_testbed.agreement.loo_personas import LooPair, build_pairs, choose_attributes
from persona_testbed.agreement.loo_stage import LooConfig, LooResult, run_loo_stage
from persona_testbed.agreement.models_stage import ModelsConfig, ModelsResult, run_models_stage
from persona_testbed.agreement.statistics import (
    Agreement,
    UndefinedPolicy,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    pabak,
)

__all__ = [
    "LABEL_COLUMNS",
    "MAJORITY_ANNOTATOR",
    "MODEL_LABEL_COLUMNS",
    "Agreement",
    "AgreementEstimate",
    "AgreementResult",
    "HumanAgreement",
    "Judgement",
    "LooConfig",
    "LooPair",
    "LooResult",
    "Majority",
    "ModelsConfig",
    "ModelsResult",
    "UndefinedPolicy",
    "attribute_table",
    "build_pairs",
    "choose_attributes",
    "cohen_kappa",
    "compare_annotators",
    "fleiss_kappa",
    "gwet_ac1",
    "judge",
    "krippendorff_alpha",
    "label_from_probability",
    "label_items",
    "label_items_with_models",
    "majority_vote",
    "pabak",
    "pair_kappas",
    "read_labels",
    "run_loo_stage",
    "run_models_stage",
    "template_digest",
]

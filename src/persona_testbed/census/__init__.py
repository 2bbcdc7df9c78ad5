"""Census-grounded personas (paper §3.1, Fig. 1, Fig. 2, Appendix A, C, E).

ACS PUMS person records -> the paper's 33-attribute personas: loading and decoding through the
data dictionary, PPS sampling (optionally raked to target marginals), procedural enrichment,
LLM consistency judge and open-ended fill, train/test split, and the census comparison.
"""

from persona_testbed.census.census_compare import CompareResult, run_census_compare
from persona_testbed.census.compare import compare, goodness_of_fit, reference_shares
from persona_testbed.census.decode import decode_persons
from persona_testbed.census.dictionary import DataDictionary
from persona_testbed.census.enrich import enrich
from persona_testbed.census.households import attach_household_codes, derive_household_codes
from persona_testbed.census.joints import compare_joints, joint_reference
from persona_testbed.census.llm_steps import template_digest
from persona_testbed.census.pums import read_households, read_persons
from persona_testbed.census.raking import (
    RakeResult,
    RakeTarget,
    effective_sample_size,
    load_target,
    rake,
)
from persona_testbed.census.sampling import Sampling, draw_iid, draw_systematic_pps
from persona_testbed.census.stage import (
    NO_RAKE,
    PersonaBuild,
    PersonaConfig,
    PersonasResult,
    Population,
    build_personas,
    find_persona,
    load_dictionary,
    load_population,
    run_personas,
)

__all__ = [
    "NO_RAKE",
    "CompareResult",
    "DataDictionary",
    "PersonaBuild",
    "PersonaConfig",
    "PersonasResult",
    "Population",
    "RakeResult",
    "RakeTarget",
    "Sampling",
    "attach_household_codes",
    "build_personas",
    "compare",
    "compare_joints",
    "decode_persons",
    "derive_household_codes",
    "draw_iid",
    "draw_systematic_pps",
    "effective_sample_size",
    "enrich",
    "find_persona",
    "goodness_of_fit",
    "joint_reference",
    "load_dictionary",
    "load_population",
    "load_target",
    "rake",
    "read_households",
    "read_persons",
    "reference_shares",
    "run_census_compare",
    "run_personas",
    "template_digest",
]

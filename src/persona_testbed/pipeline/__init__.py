"""`persona run`: one config file drives every stage in order; `--dry-run` plans the cost."""

from persona_testbed.pipeline.config import STAGE_ORDER, RunConfig
from persona_testbed.pipeline.plan import PlanRow, plan_run
from persona_testbed.pipeline.runner import PipelineResult, fingerprints, run_pipeline
from persona_testbed.pipeline.yaml_source import load_yaml_model

__all__ = [
    "STAGE_ORDER",
    "PipelineResult",
    "PlanRow",
    "RunConfig",
    "fingerprints",
    "load_yaml_model",
    "plan_run",
    "run_pipeline",
]

"""Pipeline stages as registered objects: their shape, the registry, the model pool and plans.

See docs/stages.md for how to add a stage.
"""

from persona_testbed.stages.plan import PlanContext, PlanRow
from persona_testbed.stages.pool import ModelPool
from persona_testbed.stages.registry import get_stage, register, stage_names, stages, unregister
from persona_testbed.stages.shape import Shared, Stage, fixed, share_fields

__all__ = [
    "ModelPool",
    "PlanContext",
    "PlanRow",
    "Shared",
    "Stage",
    "fixed",
    "get_stage",
    "register",
    "share_fields",
    "stage_names",
    "stages",
    "unregister",
]

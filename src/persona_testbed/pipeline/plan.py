"""`persona run --dry-run`: calls, estimated tokens and cost per stage and model; spends nothing.

Each stage owns its plan (`Stage.plan`, the same function its own command's `--dry-run` uses);
the pipeline only adds the selected stages' rows up. Estimates are upper bounds (see
`persona_testbed.stages.plan`).
"""

from __future__ import annotations

import os
from pathlib import Path

from persona_testbed.llm import PriceTable
from persona_testbed.pipeline.config import RunConfig
from persona_testbed.stages.builtin import PAPER_KEPT_PROMPTS, PRISM_PROMPTS
from persona_testbed.stages.plan import INSTRUCTION_CHARS, PlanContext, PlanRow

__all__ = ["INSTRUCTION_CHARS", "PAPER_KEPT_PROMPTS", "PRISM_PROMPTS", "PlanRow", "plan_run"]


def plan_run(config: RunConfig, prices: PriceTable, run_path: Path | None = None) -> list[PlanRow]:
    """Every selected stage's plan rows, in run order."""
    context = PlanContext(
        run_path=run_path if run_path is not None else Path(os.devnull),
        prices=prices,
        sections=config.sections(),
    )
    return [row for stage, section in config.selected() for row in stage.plan(section, context)]

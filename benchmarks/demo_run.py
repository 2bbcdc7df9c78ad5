"""How long `make demo`'s run takes: `persona run configs/demo.yaml` from a cold response cache
(every model call made by the embedded model), then again (every stage skipped), then the report.

    .venv/bin/python benchmarks/demo_run.py [--config configs/demo.yaml]

Prints one JSON object: seconds per stage, the cold total against the 300 s budget (issue 16),
the warm total, the report time, and the machine's CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from persona_testbed.llm.backends.llamacpp import usable_cores
from persona_testbed.pipeline import RunConfig, load_yaml_model, run_pipeline
from persona_testbed.report import write_report

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 300  # issue 16: the demo run in at most 5 minutes on 2 cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    args = parser.parse_args()
    config = load_yaml_model(args.config, RunConfig)
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh cache: the cold run pays for every call, as on a fresh machine.
        os.environ["PERSONA_CACHE"] = str(Path(tmp) / "cache.sqlite")
        settings = config.llm.settings(show_progress=False)
        out = Path(tmp) / "demo-out"
        started = time.perf_counter()
        cold = run_pipeline(config, out, settings=settings, announce=lambda _: None)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = run_pipeline(config, out, settings=settings, announce=lambda _: None)
        warm_s = time.perf_counter() - started
        started = time.perf_counter()
        write_report(out)
        report_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "config": str(args.config),
                "cpus": usable_cores(),
                "machine": platform.processor() or platform.machine(),
                "stages_s": {s.name: round(s.seconds, 1) for s in cold.stages},
                "cold_run_s": round(cold_s, 1),
                "within_budget": cold_s <= BUDGET_S,
                "warm_run_s": round(warm_s, 1),
                "warm_stages_skipped": sum(s.skipped for s in warm.stages),
                "report_s": round(report_s, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

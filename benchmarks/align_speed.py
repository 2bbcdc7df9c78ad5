"""Wall time of `persona align` on a run directory (one with preferences.parquet).

Runs the whole stage as `persona align --run RUN_DIR --force` does (embeddings, the three
baselines, bootstrap CIs, slices, the figure), so a finished align record is redone, and prints
the seconds it took.

    .venv/bin/python benchmarks/align_speed.py RUN_DIR [--embedder minilm|hashing] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import cast

from persona_testbed.align import AlignConfig, run_align_stage
from persona_testbed.align.config import EmbedderName
from persona_testbed.run import RunDir


def time_align(run: Path, embedder: str, seed: int) -> float:
    config = AlignConfig(embedder=cast(EmbedderName, embedder), seed=seed)
    started = time.perf_counter()
    run_align_stage(RunDir.open(run), config, force=True)
    return time.perf_counter() - started


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory with preferences.parquet")
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "hashing"))
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    seconds = time_align(options.run, options.embedder, options.seed)
    print(f"persona align ({options.embedder}) on {options.run}: {seconds:.2f} s")


if __name__ == "__main__":
    main_cli()

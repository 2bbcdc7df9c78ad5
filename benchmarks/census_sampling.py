"""Census benchmarks: 1,000,000 procedural personas, and loading a national-size PUMS file.

    .venv/bin/python benchmarks/census_sampling.py [--copies 18] [--workdir DIR] [--keep]

Each case runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own:

- `personas-1m`: `persona personas --n 1000000 --no-llm` from the bundled 14-state pool
  (load + decode + PPS draw + enrichment + split + personas.parquet + personas.jsonl);
- `load-national`: builds psam_pusa.csv + psam_pusb.csv (all 286 columns, like the real
  national split files) by concatenating the 14 shared state CSVs `--copies` times (18 copies =
  3,130,488 rows; SERIALNO gets a copy suffix so households stay distinct), then times
  `load_population` on them: read the needed columns, check every code against the dictionary,
  derive household attributes, decode;
- `personas-national`: the same files through `persona personas --n 1586 --no-llm`.

Prints a Markdown table. Needs ../shared/data/pums/2018 for the national cases.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import polars as pl

REPO = Path(__file__).resolve().parents[1]
SHARED_PUMS = REPO.parent / "shared" / "data" / "pums" / "2018"
DICTIONARY = SHARED_PUMS / "PUMS_Data_Dictionary_2018.csv"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def case_personas_1m(workdir: Path) -> dict[str, Any]:
    from persona_testbed.census import PersonaConfig, run_personas

    start = time.perf_counter()
    result = run_personas(
        workdir / "run-1m", PersonaConfig(n=1_000_000, seed=0, use_llm=False), force=True
    )
    seconds = time.perf_counter() - start
    sizes = {
        name: (workdir / "run-1m" / name).stat().st_size / 1e6
        for name in ("personas.parquet", "personas.jsonl")
    }
    return {
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "rows": result.stats["personas"],
        "note": f"parquet {sizes['personas.parquet']:.0f} MB, "
        f"jsonl {sizes['personas.jsonl']:.0f} MB",
    }


def build_national(workdir: Path, copies: int) -> tuple[list[Path], int]:
    """psam_pusa.csv / psam_pusb.csv from the state zips, `copies` times over."""
    states = []
    for path in sorted(SHARED_PUMS.glob("csv_p??.zip")):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".csv"))
            states.append(pl.read_csv(archive.read(name), infer_schema=False))
    base = pl.concat(states)
    halves = [workdir / "psam_pusa.csv", workdir / "psam_pusb.csv"]
    rows = 0
    for half, copy_range in zip(
        halves, (range(copies // 2), range(copies // 2, copies)), strict=True
    ):
        with open(half, "wb") as handle:
            for copy in copy_range:
                frame = base.with_columns(pl.col("SERIALNO") + pl.lit(f"c{copy:02d}"))
                frame.write_csv(handle, include_header=(copy == copy_range.start))
                rows += frame.height
    return halves, rows


def case_load_national(workdir: Path) -> dict[str, Any]:
    from persona_testbed.census import PersonaConfig, load_population

    files = sorted(workdir.glob("psam_pus?.csv"))
    start = time.perf_counter()
    population = load_population(PersonaConfig(pums=tuple(files), dictionary=DICTIONARY))
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in files) / 1e9
    return {
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "rows": population.frame.height,
        "note": f"2 files, {size:.2f} GB of CSV, 286 columns",
    }


def case_personas_national(workdir: Path) -> dict[str, Any]:
    from persona_testbed.census import PersonaConfig, run_personas

    files = sorted(workdir.glob("psam_pus?.csv"))
    start = time.perf_counter()
    config = PersonaConfig(n=1586, use_llm=False, pums=tuple(files), dictionary=DICTIONARY)
    result = run_personas(workdir / "run-national", config, force=True)
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": _peak_rss_mb(),
        "rows": result.stats["personas"],
        "note": f"pool of {result.stats['pool']['person_records']:,} records",
    }


CASES = {
    "personas-1m": ("1,000,000 personas, --no-llm, bundled 14-state pool", case_personas_1m),
    "load-national": ("load a national-size file (psam_pusa + psam_pusb)", case_load_national),
    "personas-national": ("1,586 personas, --no-llm, national-size input", case_personas_national),
}


def run_case(name: str, workdir: Path) -> dict[str, Any]:
    """Run one case in a fresh interpreter; returns its JSON report."""
    completed = subprocess.run(
        [sys.executable, __file__, "--case", name, "--workdir", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--copies", type=int, default=18, help="state-file copies (18: ~3.1M)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.case:  # child process: run one case, print its report as JSON
        print(json.dumps(CASES[args.case][1](args.workdir)))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="persona-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    names = ["personas-1m"]
    if SHARED_PUMS.is_dir():
        start = time.perf_counter()
        _, rows = build_national(workdir, args.copies)
        print(f"built national-size input: {rows:,} rows in {time.perf_counter() - start:.0f} s")
        names += ["load-national", "personas-national"]
    else:
        print(f"{SHARED_PUMS} not found: skipping the national-size cases")
    print(
        f"\n{platform.node()}: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, polars {pl.__version__}\n"
    )
    print("| case | rows | wall time (s) | peak RSS (MB) | note |")
    print("|---|---:|---:|---:|---|")
    for name in names:
        report = run_case(name, workdir)
        print(
            f"| {CASES[name][0]} | {report['rows']:,} | {report['seconds']:.1f} "
            f"| {report['peak_rss_mb']:,.0f} | {report['note']} |"
        )
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `personas` stage: PUMS -> sampled census records -> (LLM consistency judge) ->
procedural enrichment -> (LLM open-ended fill) -> train/test split -> run directory.

The big path is columnar (polars/numpy); pydantic Persona objects are built only for the rows
that go to a model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from persona_testbed.census.compare import reference_shares
from persona_testbed.census.decode import AGE_BRACKET, PWGTP, RACE_GROUP, decode_persons
from persona_testbed.census.dictionary import DataDictionary
from persona_testbed.census.enrich import CORE_VALUES, enrich
from persona_testbed.census.households import attach_household_codes
from persona_testbed.census.joints import joint_reference
from persona_testbed.census.llm_steps import (
    FILL_CATEGORIES,
    JOB,
    choose_fill_categories,
    judge_consistency,
    open_ended_fill,
)
from persona_testbed.census.pums import read_households, read_persons
from persona_testbed.census.pums_files import HOUSEHOLD_FILES, PERSON_FILES, expand_files
from persona_testbed.census.raking import RakeResult, effective_sample_size, load_target, rake
from persona_testbed.census.resources import (
    BUNDLED_DICTIONARY,
    BUNDLED_SAMPLE,
    DERIVED_DICTIONARY,
)
from persona_testbed.census.sampling import Sampling, draw
from persona_testbed.contracts import (
    ATTRIBUTES,
    BEFORE_PRUNING,
    CENSUS_ATTRIBUTES,
    CENSUS_REFERENCE,
    JOINT_REFERENCE,
    OUTPUT_COLUMNS,
    PERSONAS,
    PERSONAS_JSONL,
    PRUNED_PERSONAS,
    Persona,
)
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.llm.progress import status
from persona_testbed.llm.specs import DEFAULT_MODEL
from persona_testbed.run import RunDir
from persona_testbed.run.read import unreadable
from persona_testbed.seeding import child_rng

if TYPE_CHECKING:
    from persona_testbed.llm import LLMClient

NO_RAKE = "none"
DEFAULT_N = 1586
# The paper's split: 1,000 train and 586 test personas of 1,586; other N keep the proportion.
TRAIN_FRACTION = 1000 / 1586
# Replacement batches are the shortfall plus a margin for the expected prune rate (the paper
# prunes about 8.5%), so one extra round of judging usually completes N.
OVERDRAW = 1.15
STAGE = "personas"
# The stage's files by their contract paths (contracts.artifacts spells them). The joint
# reference and the records before pruning (LLM runs only) let `census-compare` check joints
# before and after the LLM consistency judge.
PERSONAS_PARQUET = PERSONAS.path
REFERENCE_PARQUET = CENSUS_REFERENCE.path
JOINT_REFERENCE_PARQUET = JOINT_REFERENCE.path
BEFORE_PRUNING_PARQUET = BEFORE_PRUNING.path
BUNDLED_SOURCE = "bundled ACS 2018 1-year PUMS, 14 states (all 173,916 person records)"


class PersonaConfig(BaseModel):
    """Everything that decides the personas (recorded in the manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(DEFAULT_N, ge=1)
    seed: int = Field(0, ge=0)
    sampling: Sampling = Sampling.PPS
    rake: str = NO_RAKE
    min_age: int = Field(0, ge=0)
    max_age: int = Field(99, ge=0)
    use_llm: bool = True
    model: str = DEFAULT_MODEL
    pums: tuple[Path, ...] = ()
    households: tuple[Path, ...] = ()
    dictionary: Path | None = None
    fill_categories: int = Field(2, ge=0, le=4, description="LLM-written categories per persona")
    max_rounds: int = Field(20, ge=1, description="judge-and-resample rounds before giving up")

    @field_validator("pums", "households", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """A config may name one file, folder or pattern as a plain string (`pums: data/`)."""
        return (value,) if isinstance(value, str | Path) else value

    @model_validator(mode="after")
    def _ages(self) -> PersonaConfig:
        if self.min_age > self.max_age:
            raise ValueError(f"--min-age {self.min_age} is above --max-age {self.max_age}")
        return self

    def with_files_expanded(self) -> PersonaConfig:
        """This config with each folder and pattern in `pums`/`households` replaced by the
        files it names (the manifest then records the files actually read)."""
        return self.model_copy(
            update={
                "pums": expand_files(self.pums, PERSON_FILES),
                "households": expand_files(self.households, HOUSEHOLD_FILES),
            }
        )

    def manifest_config(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "seed": self.seed,
            "sampling": self.sampling.value,
            "rake": self.rake,
            "min_age": self.min_age,
            "max_age": self.max_age,
            "llm": self.use_llm,
            "model": self.model if self.use_llm else None,
            "fill_categories": self.fill_categories if self.use_llm else None,
            "pums": [str(p) for p in self.pums] or "bundled",
            "households": [str(p) for p in self.households],
            "dictionary": str(self.dictionary) if self.dictionary else "bundled",
        }


@dataclass
class Population:
    """The decoded person records personas are drawn from, with their sampling weights."""

    frame: pl.DataFrame
    base_weights: np.ndarray
    weights: np.ndarray
    rake: RakeResult | None
    inputs: list[Path]
    household_stats: dict[str, int]
    source: str


@dataclass
class PersonaBuild:
    personas: pl.DataFrame
    reference: pl.DataFrame
    stats: dict[str, Any]
    pruned: pl.DataFrame | None = None
    joint_reference: pl.DataFrame | None = None
    before_pruning: pl.DataFrame | None = None


def load_dictionary(path: Path | None) -> DataDictionary:
    """The user's dictionary (or the bundled 2018 subset), plus labels of derived variables."""
    main = DataDictionary.load(path or BUNDLED_DICTIONARY)
    return main.with_fallback(DataDictionary.load(DERIVED_DICTIONARY))


def load_population(config: PersonaConfig) -> Population:
    """Read, check and decode the PUMS files (or the bundled sample); rake if asked.

    Every input error is raised here, before anything is written."""
    target = load_target(config.rake) if config.rake != NO_RAKE else None  # cheap: check first
    config = config.with_files_expanded()
    dictionary = load_dictionary(config.dictionary)
    pums = list(config.pums) or [BUNDLED_SAMPLE]
    files = len(pums) + len(config.households)
    with status(f"reading and checking {files} PUMS file{'s' if files > 1 else ''}"):
        persons = read_persons(pums, dictionary)
        households = read_households(config.households, dictionary) if config.households else None
        # A fixed record order makes the draw independent of the order the files were given in.
        persons = persons.sort("ST", "SERIALNO", "SPORDER")
        persons, household_stats = attach_household_codes(persons, households)
        frame = decode_persons(persons, dictionary)
    frame = frame.filter(pl.col("age").is_between(config.min_age, config.max_age))
    if frame.is_empty():
        raise PersonaError(
            f"no person records aged {config.min_age}-{config.max_age} in "
            f"{', '.join(str(p) for p in pums)}"
        )
    base = frame.get_column(PWGTP).to_numpy().astype(np.float64)
    result = None
    weights = base
    if target is not None:
        with status(f"raking {frame.height:,} person records to {config.rake}"):
            result = rake(frame, base, target)
        weights = result.weights
    inputs = [*pums, *config.households, config.dictionary or BUNDLED_DICTIONARY]
    if target is not None and target.path is not None:
        inputs.append(target.path)
    source = BUNDLED_SOURCE if not config.pums else ", ".join(str(p) for p in config.pums)
    return Population(frame, base, weights, result, inputs, household_stats, source)


def _strata(frame: pl.DataFrame) -> list[np.ndarray]:
    """Implicit strata for systematic PPS: age bracket, sex, race group, state."""
    return [
        frame.get_column(column).rank("dense").fill_null(0).to_numpy()
        for column in (AGE_BRACKET, "sex", RACE_GROUP, "source_state")
    ]


def _take(frame: pl.DataFrame, indices: np.ndarray) -> pl.DataFrame:
    return frame.select(pl.all().gather(pl.Series(indices, dtype=pl.UInt32)))


def _profiles(frame: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """Canonical persona text of each row, from the given attributes only."""
    rows = frame.select(columns).to_dicts()
    return [Persona.from_row(row).to_text() for row in rows]


def _sample_with_judge(
    config: PersonaConfig,
    population: Population,
    strata: list[np.ndarray],
    client: LLMClient,
) -> tuple[np.ndarray, dict[str, Any], pl.DataFrame, np.ndarray]:
    """Draw, judge, prune and redraw until N census records are kept (paper Fig. 1). Also
    returns the first draw (N records, the sample before any pruning)."""
    kept: list[int] = []
    first_draw = np.zeros(0, dtype=np.int64)
    pruned_rows: list[dict[str, Any]] = []
    judged = failures = 0
    reasons: Counter[str] = Counter()
    judged_columns = [*CENSUS_ATTRIBUTES, "detailed job description"]
    rounds = 0
    while len(kept) < config.n:
        if rounds == config.max_rounds:
            raise PersonaError(
                f"only {len(kept)} of {config.n} personas passed the consistency judge after "
                f"{rounds} rounds ({judged} judged); check the model ({config.model})"
            )
        need = config.n - len(kept)
        # Round 0 is exactly the --no-llm draw; later rounds replace the pruned with a margin.
        batch = need if rounds == 0 else math.ceil(need * OVERDRAW) + 2
        indices = draw(
            config.sampling,
            population.weights,
            batch,
            child_rng(config.seed, f"sampling/{rounds}"),
            strata,
        )
        if rounds == 0:
            first_draw = indices
        candidates = _take(population.frame, indices)
        profiles = _profiles(candidates, judged_columns)
        outcomes = judge_consistency(client, profiles, seed=config.seed)
        for index, profile, outcome in zip(indices.tolist(), profiles, outcomes, strict=True):
            if len(kept) == config.n:
                break  # the rest of the batch is neither kept nor counted
            judged += 1
            if outcome.consistent is None:
                failures += 1
            if outcome.keep:
                kept.append(index)
                continue
            reasons[outcome.reason] += 1
            row = population.frame.row(index, named=True)
            pruned_rows.append(
                {
                    "source_state": row["source_state"],
                    "source_serialno": row["source_serialno"],
                    "source_sporder": row["source_sporder"],
                    "reason": outcome.reason,
                    "profile": profile,
                }
            )
        rounds += 1
    pruned = len(pruned_rows)
    stats = {
        "judged": judged,
        "pruned": pruned,
        "kept": len(kept),
        "prune_rate": round(pruned / judged, 4) if judged else 0.0,
        "judge_failures": failures,
        "judge_rounds": rounds,
        "prune_reasons": [{"reason": r, "count": c} for r, c in reasons.most_common(25)],
        "distinct_prune_reasons": len(reasons),
    }
    schema = {
        "source_state": pl.String,
        "source_serialno": pl.String,
        "source_sporder": pl.Int64,
        "reason": pl.String,
        "profile": pl.String,
    }
    pruned_frame = pl.DataFrame(pruned_rows, schema=schema)
    return np.asarray(kept, dtype=np.int64), stats, pruned_frame, first_draw


def _fill(
    frame: pl.DataFrame, config: PersonaConfig, client: LLMClient
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The LLM open-ended fill: job description plus the categories chosen per persona."""
    chosen = choose_fill_categories(
        frame.height, child_rng(config.seed, "fill categories"), config.fill_categories
    )
    profiles = _profiles(frame, ATTRIBUTES)
    core_values = frame.get_column(CORE_VALUES).to_list()
    outcomes = open_ended_fill(client, profiles, core_values, chosen, seed=config.seed)
    updated: dict[str, list[str | None]] = {
        a: frame.get_column(a).to_list() for a in (JOB, *FILL_CATEGORIES)
    }
    failures = 0
    for index, outcome in enumerate(outcomes):
        if outcome.error is not None:
            failures += 1
        for attribute, text in outcome.values.items():
            updated[attribute][index] = text
    frame = frame.with_columns(pl.Series(a, v, dtype=pl.String) for a, v in updated.items())
    counts = Counter(category for categories in chosen for category in categories)
    stats = {
        "fill_failures": failures,
        "fill_categories_chosen": {c: counts.get(c, 0) for c in FILL_CATEGORIES},
    }
    return frame, stats


def assign_split(n: int, seed: int) -> pl.Series:
    """Seeded train/test labels: 1000/586 for N=1,586, the same proportion for other N."""
    train = np.zeros(n, dtype=bool)
    train[child_rng(seed, "split").permutation(n)[: round(n * TRAIN_FRACTION)]] = True
    labels = pl.Series("split", ["test", "train"], dtype=pl.String)
    return labels.gather(pl.Series(train.astype(np.uint32)))


def persona_ids(n: int) -> pl.Series:
    """p0000, p0001, ... (wider when N needs it)."""
    width = max(4, len(str(n - 1)))
    numbers = pl.int_range(n, eager=True, dtype=pl.Int64).cast(pl.String).str.zfill(width)
    return ("p" + numbers).alias("persona_id")


def build_personas(
    config: PersonaConfig, population: Population, client: LLMClient | None = None
) -> PersonaBuild:
    """Sample, (judge), enrich, (fill) and split; returns the persona table and its stats."""
    if config.use_llm and client is None:
        raise PersonaError("the LLM steps need a model client (or use --no-llm)")
    strata = _strata(population.frame) if config.sampling is Sampling.PPS else []
    llm_stats: dict[str, Any] = {"used": config.use_llm}
    pruned: pl.DataFrame | None = None
    before_pruning: pl.DataFrame | None = None
    if config.use_llm and client is not None:
        indices, judge_stats, pruned, first_draw = _sample_with_judge(
            config, population, strata, client
        )
        llm_stats.update(model=client.model_id, **judge_stats)
        before_pruning = _take(population.frame, first_draw).select(
            *CENSUS_ATTRIBUTES, "source_state", "source_serialno", "source_sporder"
        )
    else:
        sampling = child_rng(config.seed, "sampling/0")
        indices = draw(config.sampling, population.weights, config.n, sampling, strata)
    chosen = _take(population.frame, indices).with_columns(
        pl.Series("weight", population.weights[indices], dtype=pl.Float64)
    )
    chosen = enrich(chosen, config.seed)
    if config.use_llm and client is not None:
        chosen, fill_stats = _fill(chosen, config, client)
        llm_stats.update(fill_stats)
    personas = chosen.with_columns(persona_ids(config.n), assign_split(config.n, config.seed))
    personas = personas.select(OUTPUT_COLUMNS)
    raked = population.rake
    reference = reference_shares(
        population.frame,
        population.base_weights,
        raked.weights if raked is not None else None,
        raked.target if raked is not None else None,
        raked.margins if raked is not None else None,
    )
    joints = joint_reference(
        population.frame, population.weights, "raked" if raked is not None else "pums"
    )
    stats = _stats(config, population, personas, indices, llm_stats)
    return PersonaBuild(
        personas=personas,
        reference=reference,
        stats=stats,
        pruned=pruned,
        joint_reference=joints,
        before_pruning=before_pruning,
    )


def _stats(
    config: PersonaConfig,
    population: Population,
    personas: pl.DataFrame,
    indices: np.ndarray,
    llm_stats: dict[str, Any],
) -> dict[str, Any]:
    splits = personas.get_column("split").value_counts()
    split_counts = dict(zip(splits["split"].to_list(), splits["count"].to_list(), strict=True))
    repeats = np.bincount(indices)
    raked = population.rake
    stats: dict[str, Any] = {
        "personas": personas.height,
        "train": int(split_counts.get("train", 0)),
        "test": int(split_counts.get("test", 0)),
        "sampling": {
            "method": config.sampling.value,
            "design": "systematic PPS, implicit strata: age bracket, sex, race group, state"
            if config.sampling is Sampling.PPS
            else "i.i.d. with replacement, P proportional to weight",
            "seed": config.seed,
            "age_range": [config.min_age, config.max_age],
            "distinct_source_records": int((repeats > 0).sum()),
            "max_times_one_record_drawn": int(repeats.max()) if repeats.size else 0,
        },
        "pool": {
            "source": population.source,
            "person_records": population.frame.height,
            "households": population.frame.get_column("source_serialno").n_unique(),
            "population_represented": round(float(population.base_weights.sum())),
            **population.household_stats,
        },
        "weights": {
            "effective_sample_size_pwgtp": round(effective_sample_size(population.base_weights), 1),
        },
        "rake": {"target": NO_RAKE},
        "llm": llm_stats,
    }
    if raked is not None:
        ess = effective_sample_size(raked.weights)
        ratio = (
            raked.weights[population.base_weights > 0]
            / population.base_weights[population.base_weights > 0]
        )
        stats["rake"] = {
            "target": raked.target.name,
            "target_source": raked.target.source,
            "target_note": raked.target.note,
            "target_universe_population": raked.target.universe_population,
            "target_published_total": raked.target.published_total,
            "universe": f"ages {raked.target.min_age}+ ({raked.universe_rows} records)",
            "iterations": raked.iterations,
            "converged": raked.converged,
            "max_share_error": raked.max_share_error,
            "dropped_target_categories": raked.dropped_categories,
        }
        stats["weights"].update(
            effective_sample_size_raked=round(ess, 1),
            ess_ratio_raked_to_pwgtp=round(
                ess / stats["weights"]["effective_sample_size_pwgtp"], 4
            ),
            raking_factor_min=round(float(ratio.min()), 4),
            raking_factor_max=round(float(ratio.max()), 4),
        )
    return stats


@dataclass(frozen=True)
class PersonasResult:
    run: RunDir
    stats: dict[str, Any]
    personas_path: Path


def run_personas(
    out: Path,
    config: PersonaConfig,
    *,
    client: LLMClient | None = None,
    force: bool = False,
) -> PersonasResult:
    """Check every input, then build the personas and write them to the run directory `out`.

    Bad inputs raise before the run directory is touched; outputs are written atomically and
    the manifest records the stage only once everything is written."""
    config = config.with_files_expanded()
    population = load_population(config)
    run = RunDir.create(out)
    with run.stage(
        STAGE,
        config.manifest_config(),
        seed=config.seed,
        inputs=population.inputs,
        force=force,
    ) as stage:
        build = build_personas(config, population, client)
        PERSONAS.write(stage, build.personas)
        PERSONAS_JSONL.write(stage, build.personas)
        CENSUS_REFERENCE.write(stage, build.reference)
        if build.pruned is not None:
            PRUNED_PERSONAS.write(stage, build.pruned)
        if build.joint_reference is not None:
            JOINT_REFERENCE.write(stage, build.joint_reference)
        if build.before_pruning is not None:
            BEFORE_PRUNING.write(stage, build.before_pruning)
        stage.record.stats.update(build.stats)
        if config.use_llm and client is not None:
            stage.add_usage(client.usage)
    return PersonasResult(run=run, stats=build.stats, personas_path=PERSONAS.file(run))


def find_persona(path: Path, persona_id: str) -> Persona | None:
    """The persona with this id (or, for a number, at this row) in a personas.parquet."""
    if not path.is_file():
        raise InputError(f"{path}: {PERSONAS.what} not found (run `{PERSONAS.command}` first)")
    frame = pl.scan_parquet(path)
    try:
        match = frame.filter(pl.col("persona_id") == persona_id).collect()
        if match.is_empty() and persona_id.isdigit():
            match = frame.slice(int(persona_id), 1).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:  # truncated or damaged
        raise unreadable(path, exc) from None
    if match.is_empty():
        return None
    return Persona.from_row(match.row(0, named=True))

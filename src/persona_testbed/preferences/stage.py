"""The `preferences` stage (§3.2, Fig. 4): sample prompts per persona -> base answers y_l ->
DPF critique and revision into y_w -> persona-judge verification -> Parquet + DatasetDict.

Every model step is one batch through the LLM client, so calls run concurrently, are cached,
and a killed run resumes where it stopped without repeating a call.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from persona_testbed.contracts import (
    PERSONAS,
    PREFERENCES,
    PREFERENCES_HF,
    PROMPTS,
    VERIFICATION,
)
from persona_testbed.contracts import VERIFICATION_MD as VERIFICATION_TABLE
from persona_testbed.errors import InputError
from persona_testbed.llm.generation import STATS_KEY, FailureTally, Generation
from persona_testbed.llm.specs import DEFAULT_MODEL
from persona_testbed.preferences.dpf import (
    GenerationSettings,
    StepOutput,
    base_answers,
    critique_answers,
    revise_answers,
)
from persona_testbed.preferences.export import (
    dataset_card,
    export_parquet,
    push_to_hub,
    usable,
)
from persona_testbed.preferences.inputs import PromptPools, load_personas, load_prompt_pools
from persona_testbed.preferences.persona_judge import Judgment, judge_pairs
from persona_testbed.preferences.plan import (
    DEFAULT_PERSONA_CHARS,
    DEFAULT_QUESTION_CHARS,
    CallPlan,
    plan_calls,
)
from persona_testbed.preferences.sampling import SPLITS, PairSizes, assign_prompts
from persona_testbed.preferences.templates import TemplateSet, load_templates
from persona_testbed.preferences.verification import verification_markdown, verification_report
from persona_testbed.run import RunDir

if TYPE_CHECKING:
    from persona_testbed.llm import LLMClient, PriceTable

STAGE = "preferences"
# The stage's files by their contract paths (contracts.artifacts spells them).
PREFERENCES_PARQUET = PREFERENCES.path
HF_DIR = PREFERENCES_HF.path
VERIFICATION_JSON = VERIFICATION.path
VERIFICATION_MD = VERIFICATION_TABLE.path


class PreferencesConfig(BaseModel):
    """Everything that decides the preference pairs (recorded in the manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_persona_train: int = Field(100, ge=0)
    per_persona_test_seen: int = Field(50, ge=0)
    per_persona_test_unseen: int = Field(50, ge=0)
    templates: str = "paper"
    model: str = DEFAULT_MODEL
    judge: str | None = Field(None, description="judge model spec; None: the same as model")
    base_per_pair: bool = Field(False, description="one base answer per pair, not per prompt")
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    seed: int = Field(0, ge=0)
    max_personas: int | None = Field(None, ge=1, description="only the first N personas")

    @property
    def sizes(self) -> PairSizes:
        return PairSizes(
            self.per_persona_train, self.per_persona_test_seen, self.per_persona_test_unseen
        )

    @property
    def judge_model(self) -> str:
        return self.judge or self.model

    @property
    def generation(self) -> GenerationSettings:
        return GenerationSettings(self.max_tokens, self.temperature, self.seed)

    def manifest_config(self, templates: TemplateSet) -> dict[str, Any]:
        config = self.model_dump(mode="json")
        config["judge"] = self.judge_model
        config["templates_digest"] = templates.digest
        return config


@dataclass(frozen=True)
class PreferencesResult:
    run: RunDir
    preferences_path: Path
    dataset_path: Path
    stats: dict[str, Any]
    verification: dict[str, Any]


class _StepMeter:
    """Calls and cache hits one step cost, from the clients' running usage, and the step's
    generation failure counts (summed chunk by chunk: no reply is kept to be counted)."""

    def __init__(self, *clients: LLMClient) -> None:
        self.clients = {c.model_id: c for c in clients}
        self.steps: dict[str, dict[str, int]] = {}
        self.tallies: dict[str, FailureTally] = {"base": FailureTally()}

    def failures(self) -> dict[str, dict[str, Any]]:
        """Per step, the counts of llm.generation.failure_tally."""
        return {step: tally.as_dict() for step, tally in self.tallies.items()}

    def tally(self, step: str) -> FailureTally:
        return self.tallies.setdefault(step, FailureTally())

    def _totals(self) -> tuple[int, int]:
        calls = hits = 0
        for client in self.clients.values():
            usage = client.usage[client.model_id]
            calls, hits = calls + usage.calls, hits + usage.cache_hits
        return calls, hits

    def start(self) -> tuple[int, int]:
        return self._totals()

    def stop(self, step: str, requests: int, started: tuple[int, int]) -> None:
        """Add what happened since `started` to `step` (a step may run in several chunks)."""
        calls, hits = self._totals()
        counts = self.steps.setdefault(step, {"requests": 0, "calls": 0, "cache_hits": 0})
        counts["requests"] += requests
        counts["calls"] += calls - started[0]
        counts["cache_hits"] += hits - started[1]


def _pair_sample_index(pair_id: str) -> int:
    """A stable per-pair sample index, so per-pair base answers are separate draws whose cache
    keys do not depend on which other pairs exist."""
    return zlib.crc32(pair_id.encode("utf-8")) & 0x7FFFFFFF


def build_pairs(
    personas: pl.DataFrame, pools: PromptPools, sizes: PairSizes, seed: int
) -> pl.DataFrame:
    """The (persona, prompt) pairs with persona text, question and topic."""
    assignment = assign_prompts(
        personas["persona_id"].to_list(),
        pools.train["prompt_id"].to_list(),
        pools.heldout["prompt_id"].to_list(),
        sizes,
        seed,
    )
    prompts = pl.concat([pools.train, pools.heldout])
    return (
        assignment.with_row_index("_order")
        .join(personas, on="persona_id", how="left")
        .join(prompts, on="prompt_id", how="left")
        .sort("_order")
        .drop("_order")
        .with_columns(
            pl.concat_str("persona_id", pl.lit(":"), "prompt_id").alias("pair_id"),
        )
    )


def _shared_base_answers(
    client: LLMClient, pairs: pl.DataFrame, templates: TemplateSet, config: PreferencesConfig
) -> tuple[dict[str, StepOutput], list[Generation]]:
    """One base answer per distinct prompt (y_l does not depend on the persona)."""
    unique = pairs.unique("prompt_id", keep="first", maintain_order=True)
    outputs, outcomes = base_answers(
        client,
        templates,
        unique["prompt"].to_list(),
        settings=config.generation,
        description="base answers (shared)",
    )
    return dict(zip(unique["prompt_id"], outputs, strict=True)), outcomes


def _per_pair_base_answers(
    client: LLMClient, chunk: pl.DataFrame, templates: TemplateSet, config: PreferencesConfig
) -> tuple[list[StepOutput], list[Generation]]:
    return base_answers(
        client,
        templates,
        chunk["prompt"].to_list(),
        settings=config.generation,
        sample_indices=[_pair_sample_index(pid) for pid in chunk["pair_id"]],
    )


def _fill(outputs: list[StepOutput], rows: list[int], n: int) -> list[StepOutput]:
    """Per pair: this step's output where it ran, else a placeholder (an earlier step failed)."""
    done = dict(zip(rows, outputs, strict=True))
    return [done.get(i) or StepOutput.skipped("an earlier step failed") for i in range(n)]


def _failure(base: StepOutput, critique: StepOutput, revision: StepOutput) -> str | None:
    """The first step that failed, with why ("base: truncated"); None for a usable pair."""
    for step, output in (("base", base), ("critique", critique), ("revision", revision)):
        if output.attempts and output.failure is not None:
            return f"{step}: {output.failure}"
    return None


def _chunk_frame(
    chunk: pl.DataFrame,
    rejected: list[StepOutput],
    templates: TemplateSet,
    config: PreferencesConfig,
    *,
    client: LLMClient,
    judge_client: LLMClient,
    meter: _StepMeter,
) -> pl.DataFrame:
    """Critique, revise and judge one chunk of pairs; its rows of the output frame. A pair
    whose step failed goes no further: no later step, no judgment, never exported."""
    personas = chunk["persona_text"].to_list()
    questions = chunk["prompt"].to_list()
    n = len(chunk)

    todo = [i for i in range(n) if rejected[i].ok]
    started = meter.start()
    critiqued, outcomes = critique_answers(
        client, [personas[i] for i in todo], [questions[i] for i in todo],
        [rejected[i].text for i in todo], templates,
        settings=config.generation, sample_indices=[0] * len(todo),
    )  # fmt: skip
    meter.stop("critique", len(todo), started)
    meter.tally("critique").add(outcomes)
    critiques = _fill(critiqued, todo, n)

    todo = [i for i in range(n) if critiques[i].ok]
    started = meter.start()
    revised, outcomes = revise_answers(
        client, [personas[i] for i in todo], [questions[i] for i in todo],
        [rejected[i].text for i in todo], [critiques[i].text for i in todo], templates,
        settings=config.generation, sample_indices=[0] * len(todo),
    )  # fmt: skip
    meter.stop("revision", len(todo), started)
    meter.tally("revision").add(outcomes)
    revisions = _fill(revised, todo, n)

    todo = [i for i in range(n) if revisions[i].ok]
    started = meter.start()
    judged = judge_pairs(
        judge_client,
        [personas[i] for i in todo],
        [questions[i] for i in todo],
        [revisions[i].text for i in todo],
        [rejected[i].text for i in todo],
        templates,
    )
    meter.stop("judge", 2 * len(todo), started)
    judgments: list[Judgment | None] = [None] * n
    for i, judgment in zip(todo, judged, strict=True):
        judgments[i] = judgment
    failures = [_failure(rejected[i], critiques[i], revisions[i]) for i in range(n)]

    return chunk.select(
        "pair_id", "persona_id", "persona_text", "prompt_id", "prompt", "topic", "split"
    ).with_columns(
        pl.Series("chosen", [r.text for r in revisions], dtype=pl.String),
        pl.Series("rejected", [r.text for r in rejected], dtype=pl.String),
        pl.Series("critique", [c.text for c in critiques], dtype=pl.String),
        pl.lit(client.model_id).alias("base_model"),
        pl.lit(client.model_id).alias("critique_model"),
        pl.lit(client.model_id).alias("revision_model"),
        pl.lit(judge_client.model_id).alias("judge_model"),
        pl.Series("judge_p_chosen", [j and j.p_chosen for j in judgments], dtype=pl.Float64),
        pl.Series(
            "judge_prefers_chosen", [j and j.prefers_chosen for j in judgments], dtype=pl.Boolean
        ),
        pl.Series("judge_coverage", [j and j.coverage for j in judgments], dtype=pl.Float64),
        pl.Series("judge_method", [j and j.method for j in judgments], dtype=pl.String),
        pl.Series("revision_ok", [f is None for f in failures], dtype=pl.Boolean),
        pl.Series("revision_raw", [r.raw for r in revisions], dtype=pl.String),
        pl.Series("base_finish_reason", [r.finish_reason for r in rejected], dtype=pl.String),
        pl.Series("critique_finish_reason", [c.finish_reason for c in critiques], dtype=pl.String),
        pl.Series("revision_finish_reason", [r.finish_reason for r in revisions], dtype=pl.String),
        pl.Series("generation_failure", failures, dtype=pl.String),
        pl.lit(not config.base_per_pair).alias("base_shared"),
        pl.lit(templates.name).alias("templates"),
        chunk["persona_split"],
    )


# Pairs per round of critique / revision / judge batches: bounds the requests and replies held
# in memory at paper scale (317,200 pairs) without changing any request. Each round's rows go
# to disk as row groups of preferences.parquet before the next round starts.
DEFAULT_CHUNK_PAIRS = 10_000

# What the verification report and the stats need of every pair: kept in memory for the whole
# job (a few bytes a pair) while the texts go to disk a chunk at a time.
_SUMMARY_COLUMNS = (
    "persona_id",
    "prompt_id",
    "split",
    "judge_p_chosen",
    "judge_prefers_chosen",
    "judge_method",
    "revision_ok",
    "generation_failure",
    "base_shared",
)


def preference_chunks(
    pairs: pl.DataFrame,
    templates: TemplateSet,
    config: PreferencesConfig,
    *,
    client: LLMClient,
    judge_client: LLMClient,
    meter: _StepMeter,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> Iterator[pl.DataFrame]:
    """Run the four model steps over `pairs`, `chunk_pairs` at a time, yielding each chunk's
    rows of the contract-6 frame; `meter` counts requests, calls, cache hits and failures."""
    shared: dict[str, StepOutput] = {}
    if not config.base_per_pair:
        started = meter.start()
        shared, outcomes = _shared_base_answers(client, pairs, templates, config)
        meter.stop("base", len(shared), started)
        meter.tally("base").add(outcomes)
        del outcomes
    for offset in range(0, len(pairs), chunk_pairs):
        chunk = pairs.slice(offset, chunk_pairs)
        if config.base_per_pair:
            started = meter.start()
            rejected, outcomes = _per_pair_base_answers(client, chunk, templates, config)
            meter.stop("base", len(chunk), started)
            meter.tally("base").add(outcomes)
            del outcomes
        else:
            rejected = [shared[pid] for pid in chunk["prompt_id"]]
        yield _chunk_frame(
            chunk,
            rejected,
            templates,
            config,
            client=client,
            judge_client=judge_client,
            meter=meter,
        )


def _mean_chars(texts: pl.Series, default: float) -> float:
    lengths = texts.drop_nulls().str.len_chars().to_numpy()
    return float(lengths.mean()) if len(lengths) else default


def plan_for_run(
    run_path: Path,
    config: PreferencesConfig,
    *,
    prices: PriceTable | None = None,
    plan_personas: int | None = None,
    plan_prompts: int | None = None,
) -> CallPlan:
    """The call plan for `config` on this run's personas and prompts; `plan_personas` /
    `plan_prompts` (kept prompts, split 3000:868) override the counts, e.g. for paper scale.
    Missing run files fall back to typical text lengths."""
    from persona_testbed.prompts import train_size

    templates = load_templates(config.templates)
    persona_chars, question_chars = float(DEFAULT_PERSONA_CHARS), float(DEFAULT_QUESTION_CHARS)
    n_personas = n_train = n_heldout = 0
    personas: pl.DataFrame | None = None
    pools: PromptPools | None = None
    if PERSONAS.exists(run_path):
        personas = load_personas(run_path, config.max_personas)
        n_personas = len(personas)
        persona_chars = _mean_chars(personas["persona_text"], persona_chars)
    if PROMPTS.exists(run_path):
        pools = load_prompt_pools(run_path)
        n_train, n_heldout = len(pools.train), len(pools.heldout)
        both = pl.concat([pools.train, pools.heldout])
        question_chars = _mean_chars(both["prompt"], question_chars)
    unique_prompts = None
    if (
        plan_personas is None
        and plan_prompts is None
        and personas is not None
        and pools is not None
    ):
        # The real run's assignment is cheap to draw: count its distinct prompts exactly.
        used = config.sizes.fitted(n_train, n_heldout)
        unique_prompts = build_pairs(personas, pools, used, config.seed)["prompt_id"].n_unique()
    if plan_personas is not None:
        n_personas = plan_personas
    if plan_prompts is not None:
        n_train = train_size(plan_prompts)
        n_heldout = plan_prompts - n_train
    if n_personas == 0 or n_train == 0:
        raise InputError(
            f"{run_path}: no personas or prompts to plan for "
            "(run the personas and prompts stages, or give --plan-personas and --plan-prompts)"
        )
    models = {
        "base": config.model,
        "critique": config.model,
        "revision": config.model,
        "judge": config.judge_model,
    }
    return plan_calls(
        n_personas,
        config.sizes,
        n_train_prompts=n_train,
        n_heldout_prompts=n_heldout,
        templates=templates,
        models=models,
        prices=prices,
        shared_base=not config.base_per_pair,
        max_tokens=config.max_tokens,
        persona_chars=persona_chars,
        question_chars=question_chars,
        unique_prompts=unique_prompts,
    )


def preference_stats(
    frame: pl.DataFrame,
    steps: dict[str, dict[str, int]],
    failures: dict[str, dict[str, Any]],
    verification: dict[str, Any],
    *,
    requested: PairSizes,
    used: PairSizes,
    n_personas: int,
    templates: TemplateSet,
) -> dict[str, Any]:
    n_pairs = len(frame)
    base_requests = steps["base"]["requests"]
    return {
        "personas": n_personas,
        "pairs": n_pairs,
        "pairs_per_split": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        "per_persona_requested": vars(requested),
        "per_persona_used": vars(used),
        "distinct_prompts": frame["prompt_id"].n_unique(),
        "steps": steps,
        "model_requests": sum(s["requests"] for s in steps.values()),
        "model_calls": sum(s["calls"] for s in steps.values()),
        "cache_hits": sum(s["cache_hits"] for s in steps.values()),
        "base_shared": bool(frame["base_shared"][0]) if n_pairs else True,
        "base_requests_saved_by_sharing": n_pairs - base_requests,
        # Pairs with no usable y_w (a step failed even after its retry): never judged, never
        # exported. Per step: outputs, retried, failed, and failures by reason.
        "revision_failures": int((~frame["revision_ok"]).sum()),
        "generation_failures": int(frame["generation_failure"].is_not_null().sum()),
        STATS_KEY: failures,
        "templates": templates.name,
        "judge_model": verification["judge_model"],
        "share_prefer_chosen": verification["overall"]["share_prefer_chosen"],
        "share_ci95": [verification["overall"]["ci95_low"], verification["overall"]["ci95_high"]],
        "share_prefer_chosen_by_split": {
            s: v["share_prefer_chosen"] for s, v in verification["splits"].items()
        },
    }


def run_preferences_stage(
    run: RunDir,
    config: PreferencesConfig,
    *,
    client: LLMClient,
    judge_client: LLMClient | None = None,
    force: bool = False,
    push_to: str | None = None,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> PreferencesResult:
    """Build the preference pairs of `run` (needs personas.parquet and prompts.parquet) and
    write preferences.parquet, the verification report and the DatasetDict export.

    Inputs and templates are checked before the run directory is touched."""
    judge_client = judge_client or client
    templates = load_templates(config.templates)
    personas_path, prompts_path = PERSONAS.file(run), PROMPTS.file(run)
    personas = load_personas(run, config.max_personas)
    pools = load_prompt_pools(run)
    if personas.is_empty():
        raise InputError(f"{personas_path}: holds no personas")
    used = config.sizes.fitted(len(pools.train), len(pools.heldout))
    if used.total == 0:
        raise InputError("no preference pairs to make: every --per-persona-* size is 0")
    pairs = build_pairs(personas, pools, used, config.seed)
    with run.stage(
        STAGE,
        config.manifest_config(templates),
        seed=config.seed,
        inputs=[personas_path, prompts_path],
        force=force,
    ) as stage:
        meter = _StepMeter(client, judge_client)
        summaries = []
        # Each chunk's rows go to disk as a row group; only the few columns the report and
        # the stats need stay in memory. preferences.parquet appears when the last is in.
        with PREFERENCES.write_chunks(stage) as write_chunk:
            for chunk in preference_chunks(
                pairs, templates, config,
                client=client, judge_client=judge_client, meter=meter, chunk_pairs=chunk_pairs,
            ):  # fmt: skip
                write_chunk(chunk)
                summaries.append(
                    chunk.select(*_SUMMARY_COLUMNS, usable(chunk.columns).alias("usable"))
                )
                del chunk
        summary = pl.concat(summaries)
        del summaries
        # Only complete pairs are judged and exported; failures are counted in the stats.
        verification = verification_report(
            summary.filter("usable"), judge_client.model_id, seed=config.seed
        )
        _warn_if_mostly_undecided(verification, judge_client.model_id)
        stats = preference_stats(
            summary,
            meter.steps,
            meter.failures(),
            verification,
            requested=config.sizes,
            used=used,
            n_personas=len(personas),
            templates=templates,
        )
        VERIFICATION.write(stage, verification)
        VERIFICATION_TABLE.write(
            stage, lambda tmp: tmp.write_text(verification_markdown(verification))
        )
        card = dataset_card(
            counts=stats["pairs_per_split"],
            config=config.manifest_config(templates),
            models={
                "base (y_l)": client.model_id,
                "critique": client.model_id,
                "revision (y_w)": client.model_id,
                "judge": judge_client.model_id,
            },
            verification=verification,
            stats=stats,
        )
        # The DatasetDict is made from the Parquet file on disk, a row group at a time.
        export_parquet(PREFERENCES.file(run), PREFERENCES_HF.file(run), card)
        stage.record.outputs.append(HF_DIR + "/")
        stage.record.stats.update(stats)
        stage.add_usage(client.usage)
        if judge_client is not client:
            stage.add_usage(judge_client.usage)
    if push_to:
        import datasets

        push_to_hub(datasets.load_from_disk(str(PREFERENCES_HF.file(run))), push_to)
    return PreferencesResult(
        run, PREFERENCES.file(run), PREFERENCES_HF.file(run), stats, verification
    )


def _warn_if_mostly_undecided(verification: dict[str, Any], judge_model: str) -> None:
    """An endpoint without log-probabilities leaves every pair undecided: the share would be
    'n/a' with exit 0, so say it loudly."""
    overall = verification["overall"]
    if overall["pairs"] and overall["undecided"] * 2 > overall["pairs"]:
        print(
            f"warning: the judge {judge_model} left {overall['undecided']} of "
            f"{overall['pairs']} pairs undecided (no probability on its answer labels in some "
            "option order); does the endpoint return log-probabilities?",
            file=sys.stderr,
        )

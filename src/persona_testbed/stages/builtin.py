"""The six built-in stages of `persona run`, in run order: personas, prompts, preferences,
bench, agreement, align. Each is one `Stage` object over its package's own functions and
config."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from persona_testbed import contracts
from persona_testbed.agreement import LooConfig, ModelsConfig
from persona_testbed.align import AlignConfig
from persona_testbed.bench import BenchConfig
from persona_testbed.census import PersonaConfig
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.preferences import PreferencesConfig
from persona_testbed.prompts import PromptsConfig
from persona_testbed.run import RunDir
from persona_testbed.stages.plan import (
    DEFAULT_PERSONA_CHARS,
    DEFAULT_QUESTION_CHARS,
    INSTRUCTION_CHARS,
    PlanContext,
    PlanRow,
    estimate_row,
)
from persona_testbed.stages.pool import ModelPool
from persona_testbed.stages.shape import Shared, Stage, fixed, share_fields

Check = Callable[[], object]
PERSONA_CHARS = DEFAULT_PERSONA_CHARS + INSTRUCTION_CHARS
# When the prompt source cannot be read at planning time: PRISM's 8,011 opening prompts, of
# which the paper's curation kept 3,868.
PRISM_PROMPTS = 8_011
PAPER_KEPT_PROMPTS = 3_868


def _file(path: Path, what: str) -> None:
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")


def _zip_or_csv(path: Path) -> None:
    _file(path, "PUMS file")
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{path}: corrupt zip archive ({exc})") from None


# ---- personas ------------------------------------------------------------------------------


def _run_personas(run: RunDir, config: PersonaConfig, pool: ModelPool, force: bool) -> None:
    from persona_testbed.census import run_census_compare, run_personas

    client = pool.get(config.model) if config.use_llm else None
    run_personas(run.path, config, client=client, force=force)
    run_census_compare(run.path, force=force)


def _personas_checks(config: PersonaConfig) -> list[Check]:
    from persona_testbed.census import NO_RAKE, load_dictionary, load_target

    checks: list[Check] = []
    if config.rake != NO_RAKE:
        checks.append(lambda: load_target(config.rake))
    checks.append(lambda: load_dictionary(config.dictionary))
    try:  # a folder or pattern that names no file is itself the problem
        files = config.with_files_expanded()
    except PersonaError as exc:
        checks.append(partial(_raise, exc))
    else:
        checks += [partial(_zip_or_csv, Path(p)) for p in (*files.pums, *files.households)]
    return checks


def _raise(error: PersonaError) -> None:
    raise error


def _personas_plan(config: PersonaConfig, context: PlanContext) -> list[PlanRow]:
    if not config.use_llm:
        return []
    # Pruned profiles are replaced by new draws: the paper prunes about 8.5%.
    judged = round(config.n / (1 - 0.085))
    prices = context.prices
    return [
        estimate_row("personas", "consistency judge", config.model, judged, PERSONA_CHARS, 96,
                     prices, "assumes ~8.5% pruned"),
        estimate_row("personas", "open-ended fill", config.model, config.n, PERSONA_CHARS, 260,
                     prices),
    ]  # fmt: skip


def _personas_templates(config: PersonaConfig) -> str:
    from persona_testbed.census import template_digest

    return template_digest(config)


PERSONAS: Stage[PersonaConfig] = Stage(
    name="personas",
    title="Population: personas vs census",
    anchor="population",
    record_prefixes=("personas", "census-compare"),
    config_type=PersonaConfig,
    run=_run_personas,
    writes=fixed(
        contracts.PERSONAS.path, contracts.CENSUS_REFERENCE.path, contracts.CENSUS_COMPARE_CSV.path
    ),
    plan=_personas_plan,
    models=lambda c: (c.model,) if c.use_llm else (),
    records=fixed("personas", "census-compare"),
    checks=_personas_checks,
    fingerprint_extra=_personas_templates,
)


# ---- prompts -------------------------------------------------------------------------------


def _run_prompts(run: RunDir, config: PromptsConfig, pool: ModelPool, force: bool) -> None:
    from persona_testbed.prompts import run_prompts_stage

    client = pool.get(config.model) if config.uses_llm else None
    run_prompts_stage(run, config, client=client, force=force)


def prompt_counts(config: PromptsConfig) -> tuple[int, int, str]:
    """(prompts to curate, prompts kept for preferences, note). Without the file at hand, the
    paper's PRISM numbers; with it, every prompt counts as kept (an upper bound)."""
    from persona_testbed.prompts import load_source

    try:
        n = load_source(config).height
        return n, n, ""
    except PersonaError:
        note = f"source not readable now: assumed PRISM's {PRISM_PROMPTS:,} prompts"
        return PRISM_PROMPTS, PAPER_KEPT_PROMPTS, note


def _prompts_plan(config: PromptsConfig, context: PlanContext) -> list[PlanRow]:
    if not config.uses_llm:
        return []
    n_prompts, _, note = prompt_counts(config)
    return [
        estimate_row("prompts", "controversy classifier (both orders)", config.model,
                     2 * n_prompts, DEFAULT_QUESTION_CHARS + INSTRUCTION_CHARS, 1, context.prices,
                     note)
    ]  # fmt: skip


def _prompts_checks(config: PromptsConfig) -> list[Check]:
    from persona_testbed.prompts import load_source

    return [lambda: load_source(config)]


def _prompts_templates(config: PromptsConfig) -> str:
    from persona_testbed.prompts import template_digest

    return template_digest(config)


PROMPTS: Stage[PromptsConfig] = Stage(
    name="prompts",
    title="Prompts",
    config_type=PromptsConfig,
    run=_run_prompts,
    writes=fixed(contracts.PROMPTS.path),
    plan=_prompts_plan,
    models=lambda c: (c.model,) if c.uses_llm else (),
    checks=_prompts_checks,
    fingerprint_extra=_prompts_templates,
)


# ---- preferences ---------------------------------------------------------------------------


def _run_preferences(run: RunDir, config: PreferencesConfig, pool: ModelPool, force: bool) -> None:
    from persona_testbed.preferences import run_preferences_stage

    client = pool.get(config.model)
    judge = pool.get(config.judge_model)
    run_preferences_stage(run, config, client=client, judge_client=judge, force=force)


def _preferences_plan(config: PreferencesConfig, context: PlanContext) -> list[PlanRow]:
    from persona_testbed.preferences import plan_for_run

    personas = context.sections.get("personas")
    n_personas = personas.n if isinstance(personas, PersonaConfig) else None
    if n_personas is not None and config.max_personas:
        n_personas = min(n_personas, config.max_personas)
    prompts = context.sections.get("prompts")
    n_kept = prompt_counts(prompts)[1] if isinstance(prompts, PromptsConfig) else None
    # The same planner as `persona preferences --dry-run`, so the two never disagree; persona
    # and question lengths come from the run directory when it has them.
    plan = plan_for_run(
        context.run_path,
        config,
        prices=context.prices,
        plan_personas=n_personas,
        plan_prompts=n_kept,
    )
    return [replace(step, note=f"{plan.n_pairs:,} pairs") for step in plan.steps]


def _preferences_checks(config: PreferencesConfig) -> list[Check]:
    from persona_testbed.preferences import load_templates

    return [lambda: load_templates(config.templates)]


def _preferences_templates(config: PreferencesConfig) -> str:
    from persona_testbed.preferences import template_digest

    return template_digest(config)


PREFERENCES: Stage[PreferencesConfig] = Stage(
    name="preferences",
    title="Preferences",
    config_type=PreferencesConfig,
    run=_run_preferences,
    reads=fixed(contracts.PERSONAS.path, contracts.PROMPTS.path),
    writes=fixed(contracts.PREFERENCES.path),
    plan=_preferences_plan,
    models=lambda c: (c.model, c.judge_model),
    checks=_preferences_checks,
    fingerprint_extra=_preferences_templates,
)


# ---- bench ---------------------------------------------------------------------------------


def _run_bench(run: RunDir, config: BenchConfig, pool: ModelPool, force: bool) -> None:
    from persona_testbed.bench import run_bench_stage

    clients = pool.clients([*config.models, config.judge_model])
    run_bench_stage(run, config, settings=pool.settings, clients=clients, force=force)


def _bench_plan(config: BenchConfig, context: PlanContext) -> list[PlanRow]:
    from persona_testbed.bench import plan_rows

    return plan_rows(config, context.run_path, context.prices)


def _bench_reads(config: BenchConfig) -> tuple[str, ...]:
    reads = () if config.personas is not None else (contracts.PERSONAS.path,)
    return reads + (() if config.prompts is not None else (contracts.PROMPTS.path,))


def _bench_checks(config: BenchConfig) -> list[Check]:
    from persona_testbed.bench import TemplateSet

    checks: list[Check] = [lambda: TemplateSet.load(config.templates)]
    for path, what in ((config.personas, "bench personas file"), (config.prompts, "prompts")):
        if path is not None:
            checks.append(partial(_file, Path(path), what))
    return checks


def _share_bench(config: BenchConfig, shared: Shared) -> BenchConfig:
    update: dict[str, Any] = {}
    if "models" not in config.model_fields_set:
        update["models"] = (shared.model,)
    if "judge" not in config.model_fields_set:
        update["judge"] = shared.judge_model
    if "seed" not in config.model_fields_set:
        update["seed"] = shared.seed
    return config.model_copy(update=update) if update else config


def _bench_templates(config: BenchConfig) -> str:
    from persona_testbed.bench import template_digest

    return template_digest(config)


BENCH: Stage[BenchConfig] = Stage(
    name="bench",
    title="PERSONA Bench",
    config_type=BenchConfig,
    run=_run_bench,
    reads=_bench_reads,
    writes=fixed("bench/samples.parquet", "bench/summary.json"),
    plan=_bench_plan,
    models=lambda c: (*c.models, c.judge_model),
    checks=_bench_checks,
    share=_share_bench,
    fingerprint_extra=_bench_templates,
)


# ---- agreement -----------------------------------------------------------------------------


class AgreementSection(BaseModel):
    """The agreement stage: the leave-one-out study (paper §4.1) and model/human agreement
    (§4.2). Set either to null to leave it out; `models` needs its annotators named."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loo: LooConfig | None = Field(default_factory=lambda: LooConfig())
    models: ModelsConfig | None = None

    def stage_names(self) -> tuple[str, ...]:
        """The manifest records this stage writes."""
        names = ("agreement-loo",) if self.loo is not None else ()
        return names + (("agreement-models",) if self.models is not None else ())


def _run_agreement(run: RunDir, config: AgreementSection, pool: ModelPool, force: bool) -> None:
    from persona_testbed.agreement import run_loo_stage, run_models_stage

    if config.loo is not None:
        loo = config.loo
        client = pool.get(loo.model)
        annotators = pool.clients(loo.annotator_specs)
        run_loo_stage(run, loo, client=client, annotator_clients=annotators, force=force)
    if config.models is not None:
        clients = pool.clients(config.models.annotators)
        run_models_stage(run, config.models, clients=clients, force=force)


def _agreement_plan(config: AgreementSection, context: PlanContext) -> list[PlanRow]:
    """LOO: base answers, DPF critique + revision per (pair, question), both role-play
    annotators of every pair in both option orders. Models: every annotator, both orders."""
    from persona_testbed.contracts import ATTRIBUTES
    from persona_testbed.stages.plan import CHARS_PER_TOKEN

    rows: list[PlanRow] = []
    prices = context.prices
    loo = config.loo
    if loo is not None:
        n_attributes = len(loo.attributes or ()) or loo.n_attributes or len(ATTRIBUTES)
        pairs = n_attributes * loo.pairs
        refined = pairs * loo.questions * (2 if loo.refine_for == "both" else 1)
        attributes = "attribute" if n_attributes == 1 else "attributes"
        note = f"{n_attributes} {attributes} x {loo.pairs} pairs x {loo.questions} questions"
        answer_chars = loo.max_tokens * CHARS_PER_TOKEN
        question_chars = DEFAULT_QUESTION_CHARS + INSTRUCTION_CHARS
        rows.append(
            estimate_row("agreement", "LOO base answers", loo.model, loo.questions,
                         question_chars, loo.max_tokens, prices, note)
        )  # fmt: skip
        rows.append(
            estimate_row("agreement", "LOO critique + revision", loo.model, 2 * refined,
                         PERSONA_CHARS + 2 * answer_chars, loo.max_tokens, prices)
        )  # fmt: skip
        labelled = 2 * 2 * refined  # two personas of the pair, both option orders
        for spec in loo.annotator_specs:
            rows.append(
                estimate_row("agreement", "LOO role-play labels (both orders)", spec, labelled,
                             PERSONA_CHARS + 3 * answer_chars, 1, prices)
            )  # fmt: skip
    models = config.models
    if models is not None:
        pref = context.sections.get("preferences")
        pref = pref if isinstance(pref, PreferencesConfig) else PreferencesConfig()
        personas = context.sections.get("personas")
        n = personas.n if isinstance(personas, PersonaConfig) else PersonaConfig().n
        n_personas = min(n, pref.max_personas or n)
        per_persona = (
            pref.per_persona_train + pref.per_persona_test_seen + pref.per_persona_test_unseen
        )
        items = (models.personas or n_personas) * (models.items or per_persona)
        for spec in models.annotators:
            rows.append(
                estimate_row("agreement", "role-play labels (both orders)", spec, 2 * items,
                             PERSONA_CHARS + 2 * pref.max_tokens * CHARS_PER_TOKEN, 1, prices,
                             f"{items:,} items, upper bound")
            )  # fmt: skip
    return rows


def _agreement_models(config: AgreementSection) -> tuple[str, ...]:
    specs: list[str] = []
    if config.loo is not None:
        specs += [config.loo.model, *config.loo.annotator_specs]
    if config.models is not None:
        specs += config.models.annotators
    return tuple(specs)


def _agreement_reads(config: AgreementSection) -> tuple[str, ...]:
    reads = (contracts.PERSONAS.path,) if config.loo is not None else ()
    return reads + ((contracts.PREFERENCES.path,) if config.models is not None else ())


def _agreement_checks(config: AgreementSection) -> list[Check]:
    from persona_testbed.agreement import read_labels

    checks: list[Check] = []
    loo, models = config.loo, config.models
    if loo is not None and loo.questions_file is not None:
        checks.append(partial(_file, Path(loo.questions_file), "questions file"))
    if models is not None and models.humans is not None:
        checks.append(partial(read_labels, Path(models.humans)))
    return checks


def _share_agreement(config: AgreementSection, shared: Shared) -> AgreementSection:
    update: dict[str, Any] = {}
    if config.loo is not None:
        update["loo"] = share_fields(config.loo, shared)
    if config.models is not None:
        update["models"] = share_fields(config.models, shared)
    return config.model_copy(update=update) if update else config


def _agreement_templates(config: AgreementSection) -> str:
    from persona_testbed.agreement import template_digest

    return template_digest(config.loo, config.models)


AGREEMENT: Stage[AgreementSection] = Stage(
    name="agreement",
    title="Agreement",
    config_type=AgreementSection,
    run=_run_agreement,
    reads=_agreement_reads,
    writes=lambda c: tuple(
        f"agreement/{part}/summary.json"
        for part, section in (("loo", c.loo), ("models", c.models))
        if section is not None
    ),
    plan=_agreement_plan,
    models=_agreement_models,
    records=lambda c: c.stage_names(),
    checks=_agreement_checks,
    share=_share_agreement,
    fingerprint_extra=_agreement_templates,
)


# ---- align ---------------------------------------------------------------------------------


def _run_align(run: RunDir, config: AlignConfig, pool: ModelPool, force: bool) -> None:
    from persona_testbed.align import run_align_stage

    # No model is called (the pool goes unused): reward models and baselines fit on the CPU.
    run_align_stage(run, config, force=force)


ALIGN: Stage[AlignConfig] = Stage(
    name="align",
    title="Alignment methods: preference prediction per persona",
    config_type=AlignConfig,
    run=_run_align,
    reads=fixed(contracts.PREFERENCES.path, contracts.PERSONAS.path),
    writes=fixed(
        contracts.ALIGN_LEADERBOARD.path,
        contracts.ALIGN_LEADERBOARD_MD.path,
        contracts.ALIGN_SLICES.path,
        contracts.ALIGN_ACCURACY_PNG.path,
    ),
    # No LLM call: the dry run has no row for it (the default, empty plan).
)

BUILTIN_STAGES: tuple[Stage[Any], ...] = (
    PERSONAS,
    PROMPTS,
    PREFERENCES,
    BENCH,
    AGREEMENT,
    ALIGN,
)

"""`persona run`: every stage in order, skipping what is already done for the same config.

A stage is skipped when `pipeline.json` holds the same fingerprint for it (its section of the
config, the digest of the prompt templates it sends, the model endpoint, and the fingerprints of
the stages before it) and the manifest
records it complete with all its outputs present. An interrupted stage runs again; its model
calls come from the response cache, so no finished call is repeated.

With `retry_failed`, a finished stage whose manifest records failed rows (generation failures:
truncated, empty or errored outputs; verdict parse errors) runs again with
`ClientSettings.refresh_failed`: its good calls are cache hits and only the failed rows are
asked again (llm.generation).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_testbed.contracts import PIPELINE_JSON
from persona_testbed.llm import ClientSettings, LLMClient
from persona_testbed.llm.generation import stage_failures
from persona_testbed.llm.structured import reask_digest
from persona_testbed.pipeline.config import RunConfig, StageName
from persona_testbed.run import RunDir, write_json_atomic
from persona_testbed.run.lock import run_dir_lock
from persona_testbed.run.manifest import canonical_json

PIPELINE_FILE = PIPELINE_JSON.path


@dataclass
class StageOutcome:
    name: StageName
    skipped: bool
    seconds: float
    retried_failures: int = 0


@dataclass
class PipelineResult:
    out: Path
    stages: list[StageOutcome] = field(default_factory=list)


def _section(config: RunConfig, name: StageName) -> Any:
    section = getattr(config, name)
    return section.model_dump(mode="json") if hasattr(section, "model_dump") else section


def template_digest(config: RunConfig, name: StageName) -> str:
    """The digest of every prompt template the stage sends (each stage says which it uses)."""
    from persona_testbed import agreement, bench, preferences, prompts
    from persona_testbed import census as personas

    section = config.agreement
    digests: dict[str, Callable[[], str]] = {
        "personas": lambda: personas.template_digest(config.personas),
        "prompts": lambda: prompts.template_digest(config.prompts),
        "preferences": lambda: preferences.template_digest(config.preferences),
        "bench": lambda: bench.template_digest(config.bench),
        "agreement": lambda: agreement.template_digest(section.loo, section.models),
    }
    return digests[name]()


def fingerprints(config: RunConfig) -> dict[str, str]:
    """Per stage: a hash of its config, its prompt templates, the endpoint (and the LLM layer's
    re-ask prompt), and every earlier stage's fingerprint."""
    result: dict[str, str] = {}
    upstream = canonical_json({"base_url": config.llm.base_url, "reask": reask_digest()})
    for name in config.stages:
        own = canonical_json(_section(config, name)) + template_digest(config, name)
        digest = hashlib.sha256((upstream + own).encode("utf-8")).hexdigest()
        result[name] = digest
        upstream = digest
    return result


def _load_done(run: RunDir) -> dict[str, str]:
    import json

    path = run.file(PIPELINE_FILE)
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text("utf-8")).get("fingerprints", {}))


def _is_done(run: RunDir, name: str, fingerprint: str, done: dict[str, str]) -> bool:
    if done.get(name) != fingerprint:
        return False
    record = run.stage_record(name)
    return (
        record is not None
        and record.complete
        and all(run.file(output).exists() for output in record.outputs)
    )


class ClientPool:
    """Opens a fresh client per stage and model, so each stage's usage is its own."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._open: list[LLMClient] = []

    def get(self, spec: str) -> LLMClient:
        client = LLMClient.from_spec(spec, self.settings)
        self._open.append(client)
        return client

    @contextmanager
    def stage(self) -> Iterator[ClientPool]:
        try:
            yield self
        finally:
            for client in self._open:
                client.close()
            self._open.clear()


StageRunner = Callable[[RunDir, RunConfig, ClientPool, bool], None]


def _personas(run: RunDir, config: RunConfig, pool: ClientPool, force: bool) -> None:
    from persona_testbed.census import run_census_compare, run_personas

    section = config.personas
    client = pool.get(section.model) if section.use_llm else None
    run_personas(run.path, section, client=client, force=force)
    run_census_compare(run.path, force=force)


def _prompts(run: RunDir, config: RunConfig, pool: ClientPool, force: bool) -> None:
    from persona_testbed.prompts import run_prompts_stage

    section = config.prompts
    client = pool.get(section.model) if section.controversy_threshold > 0 else None
    run_prompts_stage(run, section, client=client, force=force)


def _preferences(run: RunDir, config: RunConfig, pool: ClientPool, force: bool) -> None:
    from persona_testbed.preferences import run_preferences_stage

    section = config.preferences
    client = pool.get(section.model)
    judge = section.judge or section.model
    judge_client = client if judge == section.model else pool.get(judge)
    run_preferences_stage(run, section, client=client, judge_client=judge_client, force=force)


def _bench(run: RunDir, config: RunConfig, pool: ClientPool, force: bool) -> None:
    from persona_testbed.bench import run_bench_stage

    section = config.bench
    specs = list(dict.fromkeys([*section.models, section.judge]))
    clients = {spec: pool.get(spec) for spec in specs}
    run_bench_stage(run, section, settings=pool.settings, clients=clients, force=force)


def _agreement(run: RunDir, config: RunConfig, pool: ClientPool, force: bool) -> None:
    from persona_testbed.agreement import run_loo_stage, run_models_stage

    section = config.agreement
    if section.loo is not None:
        loo = section.loo
        client = pool.get(loo.model)
        annotators = {
            spec: client if spec == loo.model else pool.get(spec) for spec in loo.annotator_specs
        }
        run_loo_stage(run, loo, client=client, annotator_clients=annotators, force=force)
    if section.models is not None:
        clients = {spec: pool.get(spec) for spec in section.models.annotators}
        run_models_stage(run, section.models, clients=clients, force=force)


STAGE_RUNNERS: dict[str, StageRunner] = {
    "personas": _personas,
    "prompts": _prompts,
    "preferences": _preferences,
    "bench": _bench,
    "agreement": _agreement,
}


def record_names(config: RunConfig, name: StageName) -> tuple[str, ...]:
    """The manifest records a pipeline step writes (some steps write more than one)."""
    if name == "personas":
        return ("personas", "census-compare")
    if name == "agreement":
        return config.agreement.stage_names()
    return (name,)


def recorded_failures(run: RunDir, records: tuple[str, ...]) -> int:
    """Failed rows the manifest records for these stage records."""
    total = 0
    for name in records:
        record = run.stage_record(name)
        if record is not None:
            total += stage_failures(record.stats)
    return total


def run_pipeline(
    config: RunConfig,
    out: Path,
    *,
    settings: ClientSettings,
    force: bool = False,
    retry_failed: bool = False,
    announce: Callable[[str], None] = print,
) -> PipelineResult:
    # One process per run directory: a second `persona run` on it fails at once.
    with run_dir_lock(Path(out)):
        run = RunDir.create(out)
        prints = fingerprints(config)
        done = _load_done(run)
        pool = ClientPool(settings.model_copy(update={"refresh_failed": retry_failed}))
        result = PipelineResult(out=run.path)
        for name in config.stages:
            records = record_names(config, name)
            failures = recorded_failures(run, records) if retry_failed else 0
            finished = all(_is_done(run, record, prints[name], done) for record in records)
            if finished and not failures:
                announce(f"[{name}] already done for this config: skipped")
                result.stages.append(StageOutcome(name, skipped=True, seconds=0.0))
                continue
            if failures:
                announce(f"[{name}] {failures} failed rows recorded: asking for them again")
            else:
                announce(f"[{name}] running")
            started = time.perf_counter()
            with pool.stage():
                STAGE_RUNNERS[name](run, config, pool, force)
            seconds = time.perf_counter() - started
            for record in records:
                done[record] = prints[name]
            write_json_atomic(
                run.file(PIPELINE_FILE),
                {"fingerprints": done, "config": config.model_dump(mode="json")},
            )
            announce(f"[{name}] done in {seconds:.1f} s")
            result.stages.append(
                StageOutcome(name, skipped=False, seconds=seconds, retried_failures=failures)
            )
        return result

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
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_testbed.contracts import PIPELINE_JSON
from persona_testbed.llm import ClientSettings
from persona_testbed.llm.generation import stage_failures
from persona_testbed.llm.structured import reask_digest
from persona_testbed.pipeline.config import RunConfig, StageName
from persona_testbed.run import RunDir, write_json_atomic
from persona_testbed.run.lock import run_dir_lock
from persona_testbed.run.manifest import canonical_json
from persona_testbed.stages import ModelPool, Stage

PIPELINE_FILE = PIPELINE_JSON.path
# The pool used to open a fresh client per stage and model; the name stays for old imports.
ClientPool = ModelPool


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
    section = config.section(name)
    return section.model_dump(mode="json") if hasattr(section, "model_dump") else section


def fingerprints(config: RunConfig) -> dict[str, str]:
    """Per stage: a hash of its config section and its prompt templates (the stage object's
    `fingerprint_extra`), the endpoint (and the LLM layer's re-ask prompt), and every earlier
    stage's fingerprint."""
    result: dict[str, str] = {}
    endpoint: dict[str, str | None] = {"base_url": config.llm.base_url, "reask": reask_digest()}
    if config.llm.choice_method != "auto":  # it changes how choices are scored
        endpoint["choice_method"] = config.llm.choice_method
    upstream = canonical_json(endpoint)
    for stage, section in config.selected():
        extra = stage.fingerprint_extra(section)
        text = upstream + canonical_json(_section(config, stage.name)) + (extra and "\n" + extra)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        result[stage.name] = digest
        upstream = digest
    return result


def _load_done(run: RunDir) -> dict[str, str]:
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


def record_names(config: RunConfig, name: StageName) -> tuple[str, ...]:
    """The manifest records a pipeline step writes (some steps write more than one)."""
    stage: Stage[Any] = next(s for s, _ in config.selected() if s.name == name)
    return stage.record_names(config.section(name))


def recorded_failures(run: RunDir, records: tuple[str, ...]) -> int:
    """Failed rows the manifest records for these stage records."""
    total = 0
    for name in records:
        record = run.stage_record(name)
        if record is not None:
            total += stage_failures(record.stats)
    return total


# Under `execution: batch`, the run's provider batches and their ledger (unless llm.batch_dir).
BATCH_FOLDER = "batches"


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
        if settings.execution == "batch" and settings.batch_dir is None:
            # The run directory records every batch submitted for it (the ledger, the inputs).
            settings = settings.model_copy(update={"batch_dir": run.path / BATCH_FOLDER})
        prints = fingerprints(config)
        done = _load_done(run)
        pool = ModelPool(settings.model_copy(update={"refresh_failed": retry_failed}))
        result = PipelineResult(out=run.path)
        for stage, section in config.selected():
            name = stage.name
            records = stage.record_names(section)
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
                stage.run(run, section, pool, force)
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

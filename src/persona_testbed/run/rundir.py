"""A run directory: artifacts (Parquet, JSON, PNG) plus `manifest.json`."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona_testbed.errors import ConfigMismatchError, InputError, PersonaError
from persona_testbed.llm.usage import ModelUsage
from persona_testbed.run.atomic import write_json_atomic, write_with_atomic
from persona_testbed.run.chunks import ParquetChunks, parquet_chunks
from persona_testbed.run.lock import run_dir_lock
from persona_testbed.run.manifest import (
    MANIFEST_NAME,
    Manifest,
    StageRecord,
    config_hash,
    file_sha256,
    package_versions,
)

if TYPE_CHECKING:
    import polars as pl


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunDir:
    """Create or open a run directory and record what each stage made in its manifest."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # Set when create() wrote a fresh manifest: if no stage of it ever completes, the
        # manifest goes again, so a failed first run leaves no run directory behind.
        self._fresh_manifest = False

    @classmethod
    def create(cls, path: Path) -> RunDir:
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise InputError(f"{path}: exists and is not a directory (--out names a folder)")
        try:
            run.path.mkdir(parents=True, exist_ok=True)
            if not run.manifest_path.exists():
                run.save_manifest(Manifest(created_at=_now()))
                run._fresh_manifest = True
        except OSError as exc:
            raise InputError(f"{path}: cannot create the run directory ({exc.strerror})") from None
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        run = cls(path)
        if not run.manifest_path.exists():
            raise InputError(f"{path}: not a run directory (no {MANIFEST_NAME})")
        return run

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    def file(self, name: str) -> Path:
        return self.path / name

    def load_manifest(self) -> Manifest:
        try:
            return Manifest.model_validate_json(self.manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            raise InputError(f"{self.path}: not a run directory (no {MANIFEST_NAME})") from None
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"{self.manifest_path}: invalid manifest ({first})") from None

    def _discard_outputs(self, name: str, outputs: Sequence[str]) -> None:
        """After a failed stage: remove what it wrote, so no output looks complete without its
        manifest record; an older record of the stage whose files were replaced goes too."""
        for output in outputs:
            self.file(output).unlink(missing_ok=True)
        try:
            manifest = self.load_manifest()
            previous = manifest.stages.get(name)
            if previous is not None and set(previous.outputs) & set(outputs):
                del manifest.stages[name]
                self.save_manifest(manifest)
            if self._fresh_manifest and not manifest.stages:
                self.manifest_path.unlink()
        except (PersonaError, OSError):
            pass  # best effort while another error is already on its way to the user

    def save_manifest(self, manifest: Manifest) -> None:
        manifest.versions = package_versions()
        write_json_atomic(self.manifest_path, manifest.model_dump(mode="json"))

    def stage_record(self, name: str) -> StageRecord | None:
        if not self.manifest_path.exists() and self.path.is_dir():
            return None  # created, but no stage has completed here yet
        return self.load_manifest().stages.get(name)

    def _manifest_for_update(self) -> Manifest:
        if not self.manifest_path.exists() and self.path.is_dir():
            self._fresh_manifest = True
            return Manifest(created_at=_now())
        return self.load_manifest()

    @contextmanager
    def stage(
        self,
        name: str,
        config: dict[str, Any],
        *,
        seed: int | None = None,
        inputs: Sequence[Path] = (),
        force: bool = False,
    ) -> Iterator[StageRun]:
        """Run a stage: refuse to overwrite outputs made with another config unless `force`.

        The stage's record is written only when the block finishes without error, so an
        interrupted stage never looks complete.
        """
        with (
            run_dir_lock(self.path),
            self._recorded_stage(name, config, seed, inputs, force) as stage_run,
        ):
            yield stage_run

    @contextmanager
    def _recorded_stage(
        self,
        name: str,
        config: dict[str, Any],
        seed: int | None,
        inputs: Sequence[Path],
        force: bool,
    ) -> Iterator[StageRun]:
        manifest = self._manifest_for_update()
        digest = config_hash(config)
        previous = manifest.stages.get(name)
        if previous is not None and previous.config_hash != digest and not force:
            changed = sorted(
                key
                for key in set(previous.config) | set(config)
                if previous.config.get(key) != config.get(key)
            )
            raise ConfigMismatchError(
                f"{self.path}: stage '{name}' already has outputs made with a different config "
                f"(changed: {', '.join(changed) or 'unknown'}); pass --force to overwrite"
            )
        record = StageRecord(
            name=name,
            config=config,
            config_hash=digest,
            seed=seed,
            inputs={str(p): file_sha256(Path(p)) for p in inputs},
            started_at=_now(),
        )
        stage_run = StageRun(self, record)
        started = time.perf_counter()
        try:
            yield stage_run
        except BaseException:
            self._discard_outputs(name, record.outputs)
            raise
        record.finished_at = _now()
        record.seconds = round(time.perf_counter() - started, 3)
        manifest = self._manifest_for_update()
        manifest.stages[name] = record
        self.save_manifest(manifest)


class StageRun:
    """Handle a stage uses to write artifacts and fill in its manifest record."""

    def __init__(self, run: RunDir, record: StageRecord) -> None:
        self.run = run
        self.record = record

    def _output(self, name: str) -> Path:
        if name not in self.record.outputs:
            self.record.outputs.append(name)
        return self.run.file(name)

    def write_parquet(self, name: str, frame: pl.DataFrame) -> Path:
        target = self._output(name)
        write_with_atomic(target, lambda tmp: frame.write_parquet(tmp, compression="zstd"))
        return target

    @contextmanager
    def parquet_chunks(self, name: str) -> Iterator[ParquetChunks]:
        """Write `name` a frame (row group) at a time; published when the block ends
        (run.chunks)."""
        with parquet_chunks(self._output(name)) as chunks:
            yield chunks

    def write_json(self, name: str, obj: Any) -> Path:
        target = self._output(name)
        write_json_atomic(target, obj)
        return target

    def write_file(self, name: str, writer: Any) -> Path:
        """Publish a file that `writer(tmp_path)` produces (a PNG, a CSV, ...)."""
        target = self._output(name)
        write_with_atomic(target, writer)
        return target

    def add_usage(self, usage: dict[str, ModelUsage]) -> None:
        from persona_testbed.llm.usage import merge_usage

        self.record.usage = merge_usage(self.record.usage, usage)
        self.record.models = sorted(set(self.record.models) | set(usage))

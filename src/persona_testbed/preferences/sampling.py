"""Which prompts each persona answers (§3.2): 150 of the train prompts, split 100 `train` /
50 `test_seen`, and 50 of the held-out prompts as `test_unseen`. Prompts and personas are
drawn independently; each persona has its own random stream, keyed by its id, so adding
personas never changes another persona's prompts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from persona_testbed.seeding import child_rng

TRAIN, TEST_SEEN, TEST_UNSEEN = "train", "test_seen", "test_unseen"
SPLITS = (TRAIN, TEST_SEEN, TEST_UNSEEN)


@dataclass(frozen=True)
class PairSizes:
    """Preference pairs per persona and split (the paper's 100 / 50 / 50)."""

    train: int = 100
    test_seen: int = 50
    test_unseen: int = 50

    @property
    def total(self) -> int:
        return self.train + self.test_seen + self.test_unseen

    def fitted(self, n_train_prompts: int, n_heldout_prompts: int) -> PairSizes:
        """These sizes, shrunk where there are too few prompts: the train and test_seen pairs
        of one persona are distinct train prompts, so they share what there is in proportion."""
        seen_pool = self.train + self.test_seen
        train, seen = self.train, self.test_seen
        if seen_pool > n_train_prompts:
            train = round(n_train_prompts * self.train / seen_pool) if seen_pool else 0
            seen = n_train_prompts - train
        return PairSizes(train, seen, min(self.test_unseen, n_heldout_prompts))


def assign_prompts(
    persona_ids: Sequence[str],
    train_prompt_ids: Sequence[str],
    heldout_prompt_ids: Sequence[str],
    sizes: PairSizes,
    seed: int,
) -> pl.DataFrame:
    """One row per (persona, prompt): `persona_id`, `prompt_id`, `split`, in persona order.

    `sizes` must fit the prompt pools (see PairSizes.fitted)."""
    if sizes.train + sizes.test_seen > len(train_prompt_ids):
        raise ValueError("more train + test_seen pairs per persona than train prompts")
    if sizes.test_unseen > len(heldout_prompt_ids):
        raise ValueError("more test_unseen pairs per persona than held-out prompts")
    persona_col: list[str] = []
    prompt_col: list[str] = []
    split_col: list[str] = []
    split_block = [TRAIN] * sizes.train + [TEST_SEEN] * sizes.test_seen
    split_block += [TEST_UNSEEN] * sizes.test_unseen
    for persona_id in persona_ids:
        rng = child_rng(seed, "pairs", persona_id)
        seen = rng.choice(len(train_prompt_ids), sizes.train + sizes.test_seen, replace=False)
        unseen = rng.choice(len(heldout_prompt_ids), sizes.test_unseen, replace=False)
        persona_col.extend([persona_id] * sizes.total)
        prompt_col.extend(train_prompt_ids[int(i)] for i in seen)
        prompt_col.extend(heldout_prompt_ids[int(i)] for i in unseen)
        split_col.extend(split_block)
    return pl.DataFrame(
        {"persona_id": persona_col, "prompt_id": prompt_col, "split": split_col},
        schema={"persona_id": pl.String, "prompt_id": pl.String, "split": pl.String},
    )

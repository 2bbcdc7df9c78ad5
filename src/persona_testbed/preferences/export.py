"""Export: the Hugging Face `DatasetDict` (splits train / test_seen / test_unseen) saved to
disk with a dataset card, and an optional push to the Hub (only when asked)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.errors import PersonaError
from persona_testbed.estimation import format_ci
from persona_testbed.preferences.sampling import SPLITS

_FEATURE_TYPES = {
    pl.String: "string",
    pl.Float64: "float64",
    pl.Float32: "float32",
    pl.Boolean: "bool",
    pl.Int64: "int64",
    pl.Int32: "int32",
}


def _features(frame: pl.DataFrame) -> Any:
    import datasets

    columns = {}
    for name, dtype in frame.schema.items():
        kind = _FEATURE_TYPES.get(type(dtype))
        if kind is None:
            raise PersonaError(f"column '{name}': type {dtype} has no datasets feature mapping")
        columns[name] = datasets.Value(kind)
    return datasets.Features(columns)


def usable(columns: Sequence[str]) -> pl.Expr:
    """True for a pair fit to train on (see `usable_pairs`), in a frame with `columns`."""
    keep = (pl.col("chosen").fill_null("").str.strip_chars() != "") & (
        pl.col("rejected").fill_null("").str.strip_chars() != ""
    )
    if "generation_failure" in columns:
        keep = keep & pl.col("generation_failure").is_null()
    return keep


def usable_pairs(frame: pl.DataFrame) -> pl.DataFrame:
    """The pairs fit to train on: every step generated complete (no `generation_failure`) and
    both answers non-empty. A truncated or empty answer is never exported: DPO would learn
    "complete beats truncated", not the persona."""
    return frame.filter(usable(frame.columns))


def build_dataset_dict(frame: pl.DataFrame) -> Any:
    """One `datasets.Dataset` per split (empty splits included), same columns everywhere;
    only usable pairs (`usable_pairs`). The whole frame is in memory: a stage's export goes
    through `export_parquet` instead."""
    import datasets

    frame = usable_pairs(frame)
    features = _features(frame)
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_polars(
                frame.filter(pl.col("split") == split), features=features, split=split
            )
            for split in SPLITS
        }
    )


# The files Dataset.save_to_disk writes for a split held in one data file.
_DATA_FILE = "data-00000-of-00001.arrow"
_STATE_KEYS = ("_fingerprint", "_format_columns", "_format_kwargs", "_format_type")
# The columns that say whether a row is exported.
_USABLE_COLUMNS = ("split", "chosen", "rejected", "generation_failure")


def _parquet_features(source: Any) -> Any:
    empty = pl.from_arrow(source.schema_arrow.empty_table())
    assert isinstance(empty, pl.DataFrame)
    return _features(empty)


def _save_split(source: Any, split: str, features: Any, folder: Path) -> None:
    """What `Dataset.save_to_disk` writes for `split`'s usable rows of the Parquet file
    `source`, written a row group at a time: its Arrow data file (by the datasets library's
    own writer), state.json and dataset_info.json. Nothing is memory-mapped and read back, so
    the pages of a large split never count towards this process's memory."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    folder.mkdir()
    data = folder / _DATA_FILE
    schema = features.arrow_schema
    writer = ArrowWriter(features=features, path=str(data))
    try:
        for index in range(source.num_row_groups):
            # A row group at a time (the stage writes small ones: run.chunks); the file
            # reader's own batch iterator holds far more than one batch.
            batch = source.read_row_group(index)
            # The rows to keep, by the same polars expression as `usable_pairs`, worked out on
            # the few columns it needs; the texts themselves stay Arrow, never copied twice.
            needed = [name for name in _USABLE_COLUMNS if name in batch.schema.names]
            keep = pl.from_arrow(batch.select(needed))
            assert isinstance(keep, pl.DataFrame)
            mask = keep.select((pl.col("split") == split) & usable(needed)).to_series()
            rows = batch.filter(mask.to_arrow())
            if rows.num_rows:
                writer.write_table(rows.cast(schema))
        writer.finalize()
    finally:
        writer.close()
    # The state and info save_to_disk records, taken from the Dataset over the written file
    # (opening it maps the file; no row is read).
    dataset = datasets.Dataset.from_file(
        str(data), info=datasets.DatasetInfo(features=features), split=split
    )
    state = {key: dataset.__dict__[key] for key in _STATE_KEYS}
    state["_output_all_columns"] = dataset.__dict__["_output_all_columns"]
    state["_split"] = split
    state["_data_files"] = [{"filename": _DATA_FILE}]
    (folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), "utf-8")
    info = dataclasses.asdict(dataset.info)
    info_text = json.dumps({key: info[key] for key in sorted(info)}, indent=2)
    (folder / "dataset_info.json").write_text(info_text, "utf-8")


def export_parquet(path: Path, target: Path, card: str) -> None:
    """Save the DatasetDict of the usable pairs in the Parquet file `path` at `target`, as
    `build_dataset_dict(frame).save_to_disk(...)` of the whole frame would (same rows,
    order, columns and features; `datasets.load_from_disk` reads it), but a row group at a
    time: the pairs are never in memory whole."""
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    features = _parquet_features(source)

    def fill(staging: Path) -> None:
        # What DatasetDict.save_to_disk writes: the split list, then each split's folder.
        (staging / "dataset_dict.json").write_text(json.dumps({"splits": list(SPLITS)}), "utf-8")
        for split in SPLITS:
            _save_split(source, split, features, staging / split)

    _publish_folder(target, card, fill)


def _publish_folder(target: Path, card: str, fill: Callable[[Path], None]) -> None:
    """`fill` a temporary sibling folder of `target`, add the card, then swap it into place,
    so `target` is either the old export or the complete new one, never a half-written one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    old = target.parent / f".{target.name}.old"
    import datasets

    bars_were_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # one "Saving the dataset" bar per split is only noise
    try:
        fill(staging)
        (staging / "README.md").write_text(card, "utf-8")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(staging, target)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def push_to_hub(dataset_dict: Any, repo: str) -> None:
    try:
        dataset_dict.push_to_hub(repo)
    except Exception as exc:  # the Hub client raises many types (HTTP, auth, network)
        raise PersonaError(f"--push-to-hub {repo}: {type(exc).__name__}: {exc}") from None


def dataset_card(
    *,
    counts: dict[str, int],
    config: dict[str, Any],
    models: dict[str, str],
    verification: dict[str, Any],
    stats: dict[str, Any],
) -> str:
    """The README.md of the export: provenance, config, models and counts."""
    count_rows = "\n".join(f"| {split} | {counts.get(split, 0)} |" for split in SPLITS)
    model_rows = "\n".join(f"| {step} | `{model}` |" for step, model in models.items())
    config_rows = "\n".join(f"| {k} | `{v}` |" for k, v in sorted(config.items()))
    overall = verification["overall"]
    share = overall["share_prefer_chosen"]
    verdict = (
        "no pair was judged"
        if share is None
        else f"{100 * share:.1f}% of {overall['judged']} judged pairs "
        f"(95% CI {format_ci(overall['ci95_low'], overall['ci95_high'])}, "
        "cluster bootstrap over personas and prompts; n/a with fewer than two personas)"
    )
    return f"""---
task_categories:
- text-generation
tags:
- dpo
- preference
- pluralistic-alignment
- synthetic
---

# PERSONA-style persona-specific preference pairs

Synthetic preference pairs made by `persona-testbed` following the PERSONA testbed
(Castricato et al., COLING 2025, §3.2). For each (persona, prompt) pair, `rejected` (y_l) is a
base answer written without the persona and `chosen` (y_w) is that answer critiqued against
the persona and revised by Direct Principle Feedback (templates: `{config.get("templates")}`).
Personas are synthetic, sampled from U.S. census microdata; prompts come from the run's
`prompts` stage. Everything here is model-generated: it reflects the models listed below, not
real people.

Load it with `datasets.load_from_disk(PATH)`. `prompt`, `chosen` and `rejected` are the
columns TRL's DPOTrainer reads; `persona_id`, `persona_text` and `topic` say whose preference
it is and what it is about.

## Counts

| split | pairs |
|---|---|
{count_rows}

`train` and `test_seen` use prompts from the train prompts; `test_unseen` uses held-out
prompts. Pairs left out because a generation step failed (a reply still cut by the token
limit or empty after one retry with twice the budget): {stats.get("generation_failures", 0)};
they are in the run's `preferences.parquet` with `generation_failure` saying which step and
why, never here and never in the verification share.

## Models

| step | model |
|---|---|
{model_rows}

## Verification

The persona, role-played by the judge model, chose between `chosen` and `rejected` in both
orders (averaged). It preferred `chosen` in {verdict}. Per-pair judgments are in
`judge_p_chosen` / `judge_prefers_chosen`. (The paper reports 96% with GPT-4; that is not a
measurement of this dataset.)

## Config

| key | value |
|---|---|
{config_rows}
"""

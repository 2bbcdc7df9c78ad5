from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from persona_testbed.run.chunks import parquet_chunks


def test_frames_become_row_groups_of_one_file_published_at_the_end(tmp_path: Path) -> None:
    final = tmp_path / "out.parquet"
    with parquet_chunks(final) as chunks:
        chunks.write(pl.DataFrame({"a": ["x", "y"], "b": [1.0, None]}))
        assert not final.exists()  # only the temporary file so far
        # A chunk whose column came out all-null is cast to the file's schema.
        chunks.write(pl.DataFrame({"a": ["z"], "b": [None]}))
        chunks.write(pl.DataFrame({"a": [], "b": []}, schema={"a": pl.String, "b": pl.Float64}))
    assert pq.ParquetFile(final).num_row_groups == 2
    assert pl.read_parquet(final).equals(
        pl.DataFrame({"a": ["x", "y", "z"], "b": [1.0, None, None]})
    )
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_an_error_midway_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    final = tmp_path / "out.parquet"
    pl.DataFrame({"a": ["old"]}).write_parquet(final)
    with pytest.raises(RuntimeError), parquet_chunks(final) as chunks:
        chunks.write(pl.DataFrame({"a": ["new"]}))
        raise RuntimeError("killed")
    assert pl.read_parquet(final)["a"].to_list() == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
    with pytest.raises(ValueError, match="no frame"), parquet_chunks(tmp_path / "none.parquet"):
        pass
    assert not (tmp_path / "none.parquet").exists()

"""A Parquet file written in chunks: each frame becomes row groups of a temporary file, which
is renamed into place only when the last chunk is in (run.atomic), so a job's output never has
to be held in memory whole and a killed job never leaves a complete-looking file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from persona_testbed.run.atomic import atomic_path

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq


# Rows per row group at most: a reader holds a whole row group in memory (the columns of a
# row group are compressed together), so long text rows want small groups.
ROW_GROUP_ROWS = 4096


class ParquetChunks:
    """Appends frames to one Parquet file, each in row groups of at most `row_group_rows`
    rows; every frame is cast to the first one's schema (the file has one schema)."""

    def __init__(
        self, path: Path, *, compression: str = "zstd", row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        self.path = Path(path)
        self.compression = compression
        self.row_group_rows = row_group_rows
        self.rows = 0
        self.row_groups = 0
        self._writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None

    def write(self, frame: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self._writer is None:
            self.schema = table.schema
            self._writer = pq.ParquetWriter(self.path, table.schema, compression=self.compression)
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        if table.num_rows == 0:
            return
        self._writer.write_table(table, row_group_size=self.row_group_rows)
        self.rows += table.num_rows
        self.row_groups += -(-table.num_rows // self.row_group_rows)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@contextmanager
def parquet_chunks(
    final: Path, *, compression: str = "zstd", row_group_rows: int = ROW_GROUP_ROWS
) -> Iterator[ParquetChunks]:
    """A `ParquetChunks` on a temporary file next to `final`, published at `final` when the
    block ends without error (at least one frame must have been written: it gives the schema);
    on an error the temporary file goes and `final` is untouched."""
    with atomic_path(final) as tmp:
        chunks = ParquetChunks(tmp, compression=compression, row_group_rows=row_group_rows)
        try:
            yield chunks
        finally:
            chunks.close()
        if chunks.schema is None:
            raise ValueError(f"{final}: no frame was written, so the file has no schema")

"""Writing example records to JSONL, CSV or Parquet: for the CLI's export and the TUI's."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from engine.errors import EditlensError

EXPORT_FORMATS = ("jsonl", "csv", "parquet")


def format_from_path(path: Path) -> str | None:
    suffix = path.suffix.lstrip(".")
    return suffix if suffix in EXPORT_FORMATS else None


def write_records(batches: Iterable[pa.RecordBatch], fmt: str, out: Path | None) -> int:
    """Stream record batches to ``out`` (stdout when None, text formats only); returns rows."""
    if fmt not in EXPORT_FORMATS:
        raise EditlensError(
            f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )
    if fmt == "parquet" and out is None:
        raise EditlensError("parquet is binary: pass --out FILE.parquet")
    rows = 0
    if fmt == "parquet":
        writer: pq.ParquetWriter | None = None
        for batch in batches:
            writer = writer or pq.ParquetWriter(out, batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer:
            writer.close()
        return rows
    stream: IO[str] = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        for index, batch in enumerate(batches):
            if fmt == "jsonl":
                for record in batch.to_pylist():
                    stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                _write_csv(stream, batch, header=index == 0)
            rows += batch.num_rows
    finally:
        if out:
            stream.close()
        else:
            stream.flush()
    return rows


def _write_csv(stream: IO[str], batch: pa.RecordBatch, *, header: bool) -> None:
    """CSV has no lists: list columns become JSON arrays in one cell."""
    columns = []
    for column in batch.columns:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = pa.array([json.dumps(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    table = pa.Table.from_arrays(columns, names=batch.schema.names)
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=header))
    stream.write(sink.getvalue().to_pybytes().decode("utf-8"))

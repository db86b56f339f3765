"""Writing example records to JSONL, CSV or Parquet: for the CLI's export and the TUI's."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from engine.errors import EditlensError
from engine.outputs import output_file
from engine.text import inert

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
_C1 = re.compile(r"[\x7f-\x9f]")


def format_from_path(path: Path) -> str | None:
    suffix = path.suffix.lstrip(".")
    return suffix if suffix in EXPORT_FORMATS else None


def write_records(
    batches: Iterable[pa.RecordBatch],
    fmt: str,
    out: Path | None,
    *,
    force: bool = False,
    protected: Iterable[Path] = (),
) -> int:
    """Stream record batches to ``out`` (stdout when None, text formats only); returns rows.

    A file goes through ``engine.outputs``: never onto a store (``protected`` names the one the
    caller has open), never over an existing file without ``force``, never left half-written.
    """
    if fmt not in EXPORT_FORMATS:
        raise EditlensError(
            f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )
    if fmt == "parquet" and out is None:
        raise EditlensError("parquet is binary: pass --out FILE.parquet")
    if out is None:
        try:  # CSV cannot escape control characters: on a terminal they are shown, not obeyed
            return _write_text(batches, fmt, sys.stdout, terminal=sys.stdout.isatty())
        finally:
            sys.stdout.flush()
    with output_file(out, force=force, protected=protected) as temporary:
        if fmt == "parquet":
            return _write_parquet(batches, temporary, out)
        with temporary.open("w", encoding="utf-8", newline="") as stream:
            return _write_text(batches, fmt, stream)


def _write_parquet(batches: Iterable[pa.RecordBatch], temporary: Path, out: Path) -> int:
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in batches:
            writer = writer or pq.ParquetWriter(temporary, batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        if writer:
            writer.close()
    if writer is None:  # a Parquet file needs a schema, and there was not one batch to take it from
        raise EditlensError(f"{out}: no examples to export; nothing was written")
    return rows


def _write_text(
    batches: Iterable[pa.RecordBatch], fmt: str, stream: IO[str], *, terminal: bool = False
) -> int:
    rows = 0
    for index, batch in enumerate(batches):
        if fmt == "jsonl":
            for record in batch.to_pylist():
                stream.write(json_line(record) + "\n")
        else:
            _write_csv(stream, batch, header=index == 0, terminal=terminal)
        rows += batch.num_rows
    return rows


def json_line(record: dict[str, object]) -> str:
    """One JSON object, UTF-8 kept readable, and every control character escaped: json escapes
    C0 itself; DEL and C1 (0x9B is a one-byte CSI to some terminals) are escaped here, so a JSONL
    export is safe to print and still holds exactly the stored text."""
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(record, ensure_ascii=False))


def _write_csv(
    stream: IO[str], batch: pa.RecordBatch, *, header: bool, terminal: bool = False
) -> None:
    """CSV has no lists: list columns become JSON arrays in one cell. On a terminal, text cells
    are made inert (CSV has no escape for a control character)."""
    columns = []
    for column in batch.columns:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = pa.array([json.dumps(v) for v in column.to_pylist()], pa.string())
        elif terminal and pa.types.is_string(column.type):
            column = pa.array([None if v is None else inert(v) for v in column.to_pylist()])
        columns.append(column)
    table = pa.Table.from_arrays(columns, names=batch.schema.names)
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=header))
    stream.write(sink.getvalue().to_pybytes().decode("utf-8"))

"""The whole content of a store file, to compare before and after: "nothing written" means equal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb  # tests read store files directly; the engine goes through Store

from engine.store import MEMORY_LIMIT


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    # the store's own settings, so a reader of this process that still holds the file is shared
    with duckdb.connect(str(path), read_only=True, config={"memory_limit": MEMORY_LIMIT}) as con:
        tables = [
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        ]
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in sorted(tables)
        }

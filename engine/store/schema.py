"""The store's tables, its schema version, and the upgrade of an older store.

The metric columns of ``outcomes`` and ``summaries`` are derived from ``engine.vocabulary.METRICS``,
so adding a metric there adds its column here: a store that lacks it gets it (``ALTER TABLE ...
ADD COLUMN``) the next time a writer opens it, and a reader is told to upgrade it, as for an
older schema version (no version bump needed for a metric).

An older store opened for writing is upgraded in one transaction, then stamped. Opened read-only
(the TUI, ``report``, ``info``) it is refused with what to run (``editlens info --upgrade``, or any
writing command): a reader never writes, and never reports an older store as empty.

Version history:
  1  the first released schema.
  2  ``slices``: the (method, layer) pairs of each run with their example counts, so a run with no
     scorable example still lists its methods; filled from ``outcomes`` on upgrade.
  3  ``outcomes.sort_key``: the example id's natural sort key (``natural_key``), so the list's id
     sort is numeric ("2.1" < "10.1" < "101.0"); filled from the ids on upgrade.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from engine.store.connection import Database, StoreError
from engine.vocabulary import METRICS

SCHEMA_VERSION = 3
DEFAULT_DB = "editlens.duckdb"
UPGRADE_HINT = "upgrade it once with `editlens info --upgrade` (or any writing command)"

EXAMPLE_SCHEMA = pa.schema(
    [
        ("corpus", pa.string()),
        ("id", pa.string()),
        ("split", pa.string()),
        ("text", pa.string()),
        ("words", pa.list_(pa.string())),
        ("starts", pa.list_(pa.int32())),
        ("ends", pa.list_(pa.int32())),
        ("label", pa.bool_()),
        ("rationale", pa.list_(pa.int32())),
        ("kind", pa.string()),
    ]
)

RUN_TABLES = ("predictions", "scores", "heads", "outcomes")


def natural_key(column: str) -> str:
    """SQL for the natural sort key of the id in ``column``: plain string order on it is the
    order a reader expects, "2.1" < "10.1" < "10.2" < "10.2/edited" < "101.0".

    Each run of digits becomes its length in two digits followed by the digits, leading zeros
    dropped ("29865.6" -> "0529865.016"), so a longer number sorts after a shorter one and equal
    lengths compare digit by digit; other characters stay as they are. Exact for runs of up to
    99 digits; ids that differ only in leading zeros get the same key (ties go to the id).

    Stored with each outcome row when a run is published, not computed per query: at 1 M
    examples sorting on this expression took 669 ms, on a stored column (the id) 19 ms.
    """
    digits = "lpad(length(ltrim(p, '0'))::VARCHAR, 2, '0') || ltrim(p, '0')"
    return (
        f"array_to_string(list_transform(regexp_extract_all({column}, '[0-9]+|[^0-9]+'), "
        f"lambda p: CASE WHEN p[1] BETWEEN '0' AND '9' THEN {digits} ELSE p END), '')"
    )


def metric_columns(table: str) -> dict[str, str]:
    """Column name -> SQL type of the per-metric columns of ``outcomes`` or ``summaries``."""
    if table == "outcomes":
        return {m.name: m.sql_type for m in METRICS}
    return {m.name: "DOUBLE" for m in METRICS}  # summaries: means (shares for yes/no metrics)


def _columns(table: str) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in metric_columns(table).items())


def ddl() -> str:
    """Every table, created if missing; the metric columns from the vocabulary."""
    return f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    corpus VARCHAR NOT NULL, id VARCHAR NOT NULL, split VARCHAR NOT NULL, text VARCHAR NOT NULL,
    words VARCHAR[] NOT NULL, starts INTEGER[] NOT NULL, ends INTEGER[] NOT NULL,
    label BOOLEAN NOT NULL, rationale INTEGER[] NOT NULL, kind VARCHAR NOT NULL
);  -- unique (corpus, id) is kept by write_examples; an index would hold every key in memory
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,          -- 'train' or 'evaluate'
    model VARCHAR NOT NULL,         -- what users call the model: 'minilm', 'minilm+ft:demo', ...
    checkpoint VARCHAR NOT NULL,    -- the registry name or directory that was loaded
    corpus VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    layers SMALLINT NOT NULL,
    heads SMALLINT NOT NULL,
    config JSON NOT NULL,
    metrics JSON NOT NULL,          -- classification figures (and training history for 'train')
    started TIMESTAMP NOT NULL,
    finished TIMESTAMP NOT NULL
);
-- Big tables carry no index: rows arrive sorted by run, and DuckDB's zone maps prune on it.
CREATE TABLE IF NOT EXISTS predictions (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL, label BOOLEAN NOT NULL,
    prob DOUBLE NOT NULL,           -- p(needs edit)
    pred BOOLEAN NOT NULL,
    confidence DOUBLE NOT NULL,     -- p(predicted class)
    seen_words INTEGER NOT NULL,    -- words before the model's length cut
    scorable BOOLEAN NOT NULL       -- needs an edit, has a rationale, and all of it was seen
);
CREATE TABLE IF NOT EXISTS scores (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL, method VARCHAR NOT NULL,
    layer SMALLINT NOT NULL,        -- 1..L, or 0 for methods without layers
    scores FLOAT[] NOT NULL         -- one per seen word
);
CREATE TABLE IF NOT EXISTS heads (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL,
    grid FLOAT[] NOT NULL,          -- layers x heads, row-major: share of [CLS] attention on the rationale
    last FLOAT[] NOT NULL           -- heads x seen words, row-major: the last layer's [CLS] rows
);
-- One row per evaluated example x method x layer, carrying what the TUI filters on, so a filter
-- reads one contiguous slice (rows are sorted by run, method, layer) and joins nothing.
CREATE TABLE IF NOT EXISTS outcomes (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL, example VARCHAR NOT NULL,
    label BOOLEAN NOT NULL, pred BOOLEAN NOT NULL, confidence DOUBLE NOT NULL,
    kind VARCHAR NOT NULL, rationale_size SMALLINT NOT NULL, seen_words INTEGER NOT NULL,
    scorable BOOLEAN NOT NULL,      -- the metrics are NULL when not
    {_columns("outcomes")},
    sort_key VARCHAR                -- natural_key(example), written on publish (NULL in staging)
);
-- Written when a run is published: per method x layer x population means, so reports need no
-- pass over outcomes ...
CREATE TABLE IF NOT EXISTS summaries (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL,
    population VARCHAR NOT NULL,    -- 'all' scorable sentences, or those 'flagged' as needing an edit
    n INTEGER NOT NULL,
    {_columns("summaries")}
);
-- ... and every (method, layer) a run has, scorable or not.
CREATE TABLE IF NOT EXISTS slices (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL,
    examples INTEGER NOT NULL, scorable INTEGER NOT NULL
);
"""


SUMMARISE_SLICES = """
    INSERT INTO slices
    SELECT run, method, layer, count(*), count(*) FILTER (WHERE scorable)
    FROM outcomes WHERE {where} GROUP BY run, method, layer
"""

# What each version adds beyond new tables and metric columns (which ``upgrade`` always adds).
_MIGRATIONS: dict[int, str] = {
    2: SUMMARISE_SLICES.format(where="TRUE"),
    3: "ALTER TABLE outcomes ADD COLUMN sort_key VARCHAR; "
    f"UPDATE outcomes SET sort_key = {natural_key('example')}",
}


def check(db: Database, *, read_only: bool) -> None:
    """Make sure the file is a current editlens store: create it when empty, upgrade it when
    older (writers only), refuse it otherwise, with a line that says what to do."""
    path = db.path
    tables = {row[0] for row in db.rows("SELECT table_name FROM duckdb_tables()")}
    if "meta" in tables:
        row = db.one("SELECT value FROM meta WHERE key = 'schema_version'")
        if row and not str(row[0]).isdigit():
            raise StoreError(
                f"{path}: store schema version {str(row[0])!r} is not a number (a damaged "
                "store); use another --db or a backup"
            )
        found = int(row[0]) if row else 0
    elif tables:
        raise StoreError(f"{path}: a DuckDB file but not an editlens store; use another --db")
    else:
        found = 0
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store schema {found} is newer than this editlens understands "
            f"({SCHEMA_VERSION}); upgrade editlens or use another --db"
        )
    if read_only:
        if found == 0:
            raise StoreError(f"{path}: store is empty; run `editlens demo` or `editlens ingest`")
        if found < SCHEMA_VERSION:
            raise StoreError(
                f"{path}: store schema {found} is older than this editlens ({SCHEMA_VERSION}); "
                f"{UPGRADE_HINT}"
            )
        missing = sorted({c for columns in _missing_columns(db).values() for c in columns})
        if missing:
            raise StoreError(
                f"{path}: store has no column for the metrics {', '.join(missing)} (added to "
                f"editlens since it was written); {UPGRADE_HINT}"
            )
        return
    if found < SCHEMA_VERSION or _missing_columns(db):
        upgrade(db, found)


def _missing_columns(db: Database) -> dict[str, dict[str, str]]:
    """Per table, the vocabulary's metric columns that the file lacks."""
    existing: dict[str, set[str]] = {}
    for table, column in db.rows(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE table_name IN ('outcomes', 'summaries')"
    ):
        existing.setdefault(table, set()).add(column)
    missing = {}
    for table in ("outcomes", "summaries"):
        if table in existing:
            wanted = metric_columns(table)
            lacking = {n: t for n, t in wanted.items() if n not in existing[table]}
            if lacking:
                missing[table] = lacking
    return missing


def upgrade(db: Database, found: int) -> None:
    """Bring a store at version ``found`` (0: a new file) to ``SCHEMA_VERSION`` in one
    transaction: new tables, new metric columns, each version's data migration, the stamp."""
    with db.transaction():
        missing = _missing_columns(db)
        db.execute(ddl())
        for table, columns in missing.items():
            for name, kind in columns.items():
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        if found:  # a new file has no data to migrate
            for version in range(found + 1, SCHEMA_VERSION + 1):
                if version in _MIGRATIONS:
                    db.execute(_MIGRATIONS[version])
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )


def quote(path: Path) -> str:
    """A path inside a SQL string literal."""
    return str(path).replace("'", "''")

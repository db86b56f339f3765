"""The DuckDB store: the only package that speaks SQL. Callers get Arrow tables or dataclasses.

One module per consumer: ``schema`` (tables, version, upgrade), ``connection`` (opening, waiting
for a busy file, the one error path), ``ingest`` (corpora), ``jobs`` (staging writes, publish),
``browse`` (reports and the TUI's list), ``analysis`` (the TUI's analysis screens), ``filters``
(the list's filter value), ``records`` (the values handed back), ``stores`` (``Store`` and
``StoreReader``, and how processes share the file).
"""

from __future__ import annotations

from engine.store.browse import ResultReads
from engine.store.connection import MEMORY_LIMIT, WAIT_SECONDS, StoreError
from engine.store.filters import (
    KINDS,
    OUTCOMES,
    PREDICTIONS,
    RATIONALE_SIZES,
    SORTS,
    ExampleFilter,
)
from engine.store.ingest import examples_to_arrow
from engine.store.jobs import remove_store_file
from engine.store.records import CorpusSummary, Run, dumps
from engine.store.schema import DEFAULT_DB, EXAMPLE_SCHEMA, RUN_TABLES, SCHEMA_VERSION
from engine.store.stores import (
    StagedFile,
    Store,
    StoreReader,
    changed_token,
    publish_run,
    remove_staged,
    staged_files,
    staging_dir,
)
from engine.vocabulary import BROWSE_METRICS, POPULATIONS
from engine.vocabulary import METRIC_NAMES as OUTCOME_METRICS

__all__ = [
    "BROWSE_METRICS",
    "DEFAULT_DB",
    "EXAMPLE_SCHEMA",
    "KINDS",
    "MEMORY_LIMIT",
    "OUTCOMES",
    "OUTCOME_METRICS",
    "POPULATIONS",
    "PREDICTIONS",
    "RATIONALE_SIZES",
    "RUN_TABLES",
    "SCHEMA_VERSION",
    "SORTS",
    "WAIT_SECONDS",
    "CorpusSummary",
    "ExampleFilter",
    "ResultReads",
    "Run",
    "StagedFile",
    "Store",
    "StoreError",
    "StoreReader",
    "changed_token",
    "dumps",
    "examples_to_arrow",
    "publish_run",
    "remove_staged",
    "remove_store_file",
    "staged_files",
    "staging_dir",
]

"""Evaluation: predictions, word scores and agreement metrics for one model on one corpus split.

A job reads its examples into its own staging store, writes results there chunk by chunk (so a
killed job resumes where it stopped), and publishes everything to the main store in one
transaction at the end: a run is visible complete or not at all. What a chunk becomes is
``engine.evaluator``'s business.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.corpus import SPLITS
from engine.device import DEFAULT_PRECISION, check_precision, resolve_device
from engine.errors import EditlensError
from engine.evaluator import Evaluator
from engine.metrics import Classification, classification
from engine.models import load_model, model_label, slug
from engine.specs import EvalSpec
from engine.store import Run, Store, publish_run, staging_dir
from engine.vocabulary import METHOD_NAMES

ALL_METHODS = METHOD_NAMES
CHUNK_ROWS = 512


@dataclass(frozen=True)
class EvalProgress:
    done: int
    total: int
    examples_per_s: float


@dataclass(frozen=True)
class EvalResult:
    run_id: str
    model: str
    staging: Path
    merged: bool
    classification: Classification
    examples: int
    resumed: int  # examples found already done in the staging store


# Where it runs, how many rows share a pass and what it is called do not change what an
# evaluation computes: changing them reuses the run instead of recomputing it.
NOT_IDENTITY = ("device", "batch_size", "label")


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """What makes two evaluations the same, from a spec's fields or a stored run's config."""
    kept = {k: v for k, v in config.items() if k not in NOT_IDENTITY}
    if kept.get("precision") == DEFAULT_PRECISION:
        del kept["precision"]  # fp32 runs keep the ids they had before precision existed
    return kept


def run_id_for(spec: EvalSpec) -> str:
    """Deterministic, so rerunning the same evaluation finds its staging store and resumes."""
    digest = hashlib.sha1(json.dumps(identity(asdict(spec)), sort_keys=True).encode()).hexdigest()
    return f"eval-{slug(model_label(spec.model))}-{slug(spec.corpus)}-{spec.split}-{digest[:8]}"


def evaluate(
    db: Path,
    spec: EvalSpec,
    *,
    merge: bool = True,
    on_progress: Callable[[EvalProgress], None] | None = None,
) -> EvalResult:
    """Evaluate ``spec.model`` on ``spec.corpus``; every check happens before anything is written."""
    spec.check()
    if spec.split not in (*SPLITS, "all"):
        raise EditlensError(f"unknown split {spec.split!r}; use train, dev, test or all")
    splits = list(SPLITS) if spec.split == "all" else [spec.split]
    device = resolve_device(spec.device)
    check_precision(device, spec.precision)
    with Store(db, read_only=True) as main:
        if not main.has_corpus(spec.corpus):
            raise EditlensError(
                f"corpus {spec.corpus!r} is not in {db}; ingest it first (see `editlens info`)"
            )
        if main.count_examples(spec.corpus, splits) == 0:
            raise EditlensError(f"corpus {spec.corpus!r} has no examples in split {spec.split!r}")
        loaded = load_model(spec.model, seed=spec.seed)
        bad = [layer for layer in spec.layers if not 1 <= layer <= loaded.layers]
        if bad:
            raise EditlensError(
                f"--layers {bad[0]} is out of range: {spec.model} has layers 1..{loaded.layers}"
            )
        positions = int(getattr(loaded.model.config, "max_position_embeddings", spec.max_length))
        if spec.max_length > positions:
            raise EditlensError(
                f"--max-length {spec.max_length} is more than {spec.model} has positions for; "
                f"use at most {positions}"
            )
        run_id = run_id_for(spec)
        staging_path = staging_dir(db) / f"{run_id}.duckdb"
        staging_path.parent.mkdir(parents=True, exist_ok=True)
        staging = Store(staging_path)
        if not staging.has_corpus(spec.corpus):
            batches = main.example_batches(spec.corpus, splits=splits, limit=spec.limit)
            staging.write_examples(spec.corpus, (pa.Table.from_batches([b]) for b in batches))
    started = datetime.now()
    with staging:
        evaluator = Evaluator(spec, loaded, run_id, device)
        resumed = staging.count_done(run_id)
        total = staging.count_examples(spec.corpus)  # the staging store holds just these
        done, clock = resumed, time.perf_counter()

        def batch_done(size: int) -> None:
            nonlocal done
            done += size
            if on_progress:
                rate = (done - resumed) / max(time.perf_counter() - clock, 1e-9)
                on_progress(EvalProgress(done, total, rate))

        for chunk in staging.pending_example_batches(spec.corpus, run_id, rows=CHUNK_ROWS):
            staging.write_chunk(evaluator.process(chunk, batch_done))
        labels, preds = staging.run_labels(run_id)
        figures = classification(labels, preds)
        staging.record_run(
            Run(
                id=run_id,
                kind="evaluate",
                model=evaluator.display_name,
                checkpoint=loaded.source,
                corpus=spec.corpus,
                split=spec.split,
                layers=loaded.layers,
                heads=loaded.heads,
                config={**asdict(spec), "device": str(device)},
                metrics=asdict(figures),
                started=started,
                finished=datetime.now(),
            )
        )
    if merge:
        publish_run(db, staging_path, run_id)
    return EvalResult(run_id, evaluator.display_name, staging_path, merge, figures, total, resumed)

"""Evaluation: predictions, word scores and agreement metrics for one model on one corpus split.

A job reads its examples into its own staging store, writes results there chunk by chunk (so a
killed job resumes where it stopped), and publishes everything to the main store in one
transaction at the end: a run is visible complete or not at all. What a chunk becomes is
``engine.evaluator``'s business.

Several processes (``torchrun --nproc_per_node N``, ``accelerate launch``) run this same function,
one per rank, each on the device of its local rank. Rank 0 prepares the staging store; the
examples still pending are then cut into chunks exactly as one process cuts them (``CHUNK_ROWS``
in id order), and rank r evaluates chunks r, r + N, r + 2N, ... into a shard store of its own
beside the staging store (``<run>.rank<r>.duckdb``). When every rank has finished, rank 0 adds
the shards to the staging store and publishes the run once, so its classification figures and
summaries cover every example; the run's id does not depend on N. A killed rank leaves its shard
behind and nothing visible; the next attempt, with any number of processes, adds the shards left
over before it cuts the pending examples, so no finished chunk is computed twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from engine.corpus import SPLITS
from engine.device import DEFAULT_PRECISION, Processes, check_precision, start_processes
from engine.errors import EditlensError
from engine.evaluator import Evaluator
from engine.metrics import Classification, classification
from engine.models import load_model, model_label, slug
from engine.specs import EvalSpec
from engine.store import Run, Store, publish_run, remove_store_file, staging_dir
from engine.vocabulary import METHOD_NAMES

ALL_METHODS = METHOD_NAMES
CHUNK_ROWS = 512
# Device types on which each chunk is written on a thread while the next one computes. On a GPU
# the host only waits while the device computes; on the CPU the cores that would write are the
# ones computing, and writing behind gained nothing (0.97x and 1.04x the rate of writing in
# front, medians of 7 and 3 interleaved pairs on 2 cores, bench_engine.py).
WRITES_BEHIND_ON = frozenset({"cuda", "mps"})
T, U = TypeVar("T"), TypeVar("U")


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
    # None on ranks other than 0: they return before rank 0 has published, with their own shard
    # (``staging``) and its example count; only rank 0's result describes the run. A shard may
    # be empty (fewer chunks than ranks), so it has no figures of its own.
    classification: Classification | None
    examples: int
    resumed: int  # examples found already done in the staging store
    rank: int = 0


# Where it runs, on how many processes, how many rows share a pass and what it is called do not
# change what an evaluation computes: changing them reuses the run instead of recomputing it.
NOT_IDENTITY = ("device", "processes", "batch_size", "label")


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
    """Evaluate ``spec.model`` on ``spec.corpus``; every check happens before anything is written.

    Under several processes every rank calls this; rank 0 alone reports progress and publishes.
    """
    spec.check()
    if spec.split not in (*SPLITS, "all"):
        raise EditlensError(f"unknown split {spec.split!r}; use train, dev, test or all")
    splits = list(SPLITS) if spec.split == "all" else [spec.split]
    procs = start_processes(spec.device)
    check_precision(procs.device, spec.precision)
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
        loaded.check_max_length(spec.max_length)
        run_id = run_id_for(spec)
        staging_path = staging_dir(db) / f"{run_id}.duckdb"
        if procs.main:
            _prepare_staging(main, staging_path, spec, splits, run_id)
    procs.barrier()  # the other ranks read the staging store rank 0 prepared
    started = datetime.now()
    evaluator = Evaluator(spec, loaded, run_id, procs.device)
    report = on_progress if procs.main else None
    if procs.world == 1:
        with Store(staging_path) as staging:
            resumed, total = _evaluate_chunks(staging, staging, evaluator, procs, report)
    else:
        shard_path = _shard_path(staging_path, procs.rank)
        with Store(staging_path, read_only=True) as source, Store(shard_path) as shard:
            resumed, total = _evaluate_chunks(source, shard, evaluator, procs, report)
            examples = shard.count_done(run_id)
        procs.barrier()  # every shard is written
        if not procs.main:
            name = evaluator.display_name
            return EvalResult(run_id, name, shard_path, False, None, examples, 0, procs.rank)
    with Store(staging_path) as staging:
        _add_shards(staging, staging_path, run_id)
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
                config={**asdict(spec), "device": procs.device_name, "processes": procs.world},
                metrics=asdict(figures),
                started=started,
                finished=datetime.now(),
            )
        )
    if merge:
        publish_run(db, staging_path, run_id)
    return EvalResult(run_id, evaluator.display_name, staging_path, merge, figures, total, resumed)


def _prepare_staging(
    main: Store, path: Path, spec: EvalSpec, splits: list[str], run_id: str
) -> None:
    """The staging store with the run's examples and the rows of every shard an earlier,
    killed attempt left (by rank 0 alone, before any rank evaluates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with Store(path) as staging:
        if not staging.has_corpus(spec.corpus):
            batches = main.example_batches(spec.corpus, splits=splits, limit=spec.limit)
            staging.write_examples(spec.corpus, (pa.Table.from_batches([b]) for b in batches))
        _add_shards(staging, path, run_id)


def _shard_path(staging_path: Path, rank: int) -> Path:
    return staging_path.with_name(f"{staging_path.stem}.rank{rank}.duckdb")


def _add_shards(staging: Store, staging_path: Path, run_id: str) -> None:
    """Move the rows of every rank's shard into the staging store, then delete the shards."""
    for shard in sorted(staging_path.parent.glob(f"{staging_path.stem}.rank*.duckdb")):
        staging.add_shard(shard, run_id)
        remove_store_file(shard)


def _evaluate_chunks(
    source: Store,
    target: Store,
    evaluator: Evaluator,
    procs: Processes,
    on_progress: Callable[[EvalProgress], None] | None,
) -> tuple[int, int]:
    """Evaluate this rank's chunks of the examples ``source`` has no prediction for, writing
    each into ``target``; returns (examples done before, examples in all). Reading and
    tokenising the next chunk overlaps computing this one, and on a GPU so does writing the one
    before (``WRITES_BEHIND_ON``)."""
    corpus, run_id = evaluator.spec.corpus, evaluator.run_id
    resumed = source.count_done(run_id)
    total = source.count_examples(corpus)  # the staging store holds just these
    pending = total - resumed
    mine = _rows_of_rank(pending, procs.world, procs.rank)
    scale = pending / max(mine, 1)  # rank 0's share stands for the whole run's progress
    done, clock = 0, time.perf_counter()

    def batch_done(size: int) -> None:
        nonlocal done
        done += size
        if on_progress:
            rate = done * scale / max(time.perf_counter() - clock, 1e-9)
            on_progress(EvalProgress(resumed + round(done * scale), total, rate))

    chunks = source.pending_example_batches(corpus, run_id, rows=CHUNK_ROWS)
    ours = (chunk for index, chunk in enumerate(chunks) if index % procs.world == procs.rank)
    if evaluator.device.type in WRITES_BEHIND_ON:
        writes = target.chunks_written_behind()
    else:
        writes = nullcontext(target.write_chunk)
    with writes as write:
        for examples in prefetched(ours, evaluator.prepare):
            write(evaluator.process_prepared(examples, batch_done))
    return resumed, total


def prefetched(items: Iterator[T], work: Callable[[T], U]) -> Iterator[U]:
    """``work(item)`` for each item in order, the next one computed on a thread while the
    caller uses the current one: a chunk is read and tokenised while the device evaluates the
    chunk before it. Items are drawn on the caller's thread (they come from the store)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="editlens-prefetch") as pool:
        pending = None
        for item in items:
            ahead = pool.submit(work, item)
            if pending is not None:
                yield pending.result()
            pending = ahead
        if pending is not None:
            yield pending.result()


def _rows_of_rank(pending: int, world: int, rank: int) -> int:
    """How many of ``pending`` examples fall in the chunks rank ``rank`` of ``world`` takes."""
    starts = range(rank * CHUNK_ROWS, pending, world * CHUNK_ROWS)
    return sum(min(CHUNK_ROWS, pending - start) for start in starts)

"""Throwaway stores for the TUI's tests and benchmark, written through the real Store API.

``build_small`` makes a realistic little store (two runs x 60 examples, every method, 6 layers x
12 heads); ``build_large`` makes the million-example store the benchmark needs, column-wise with
numpy and Arrow in chunks. Both are deterministic (seeded).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from textual.worker import WorkerCancelled

from engine.corpus import Example, tokenize_words
from engine.metrics import plausibility
from engine.store import OUTCOME_METRICS, Run, Store, examples_to_arrow

CORPUS = "demo"
LAYERS, HEADS = 6, 12
LAYER_METHODS = ("attention", "attention_max", "rollout")
FLAT_METHODS = ("grad", "grad_x_input", "integrated_gradients", "random")
KINDS = ("deleted", "spelling", "inserted", "mixed", "none")
RUNS = (
    # id, model, how strongly its scores point at the rationale, accuracy of its predictions
    ("ft-minilm", "minilm+ft:demo", 0.3, 0.85),
    ("base-random", "minilm-random", 0.0, 0.55),
)
T0 = datetime(2025, 1, 1, 9, 0, 0)
# One outcome row per evaluated example x method x layer; the metrics are NULL when not scorable.
OUTCOME_SCHEMA = pa.schema(
    [
        ("run", pa.string()),
        ("method", pa.string()),
        ("layer", pa.int16()),
        ("example", pa.string()),
        ("label", pa.bool_()),
        ("pred", pa.bool_()),
        ("confidence", pa.float64()),
        ("kind", pa.string()),
        ("rationale_size", pa.int16()),
        ("seen_words", pa.int32()),
        ("scorable", pa.bool_()),
        ("exact", pa.bool_()),
        ("top3", pa.bool_()),
        ("hit1", pa.bool_()),
        ("jaccard", pa.float32()),
        ("jaccard50", pa.bool_()),
        ("token_f1", pa.float32()),
        ("auprc", pa.float32()),
        ("comprehensiveness", pa.float32()),
        ("sufficiency", pa.float32()),
    ]
)

_VOCAB = [
    "the",
    "model",
    "we",
    "propose",
    "a",
    "method",
    "for",
    "estimating",
    "parameters",
    "of",
    "the",
    "network",
    "in",
    "this",
    "paper",
    "results",
    "show",
    "that",
    "our",
    "approach",
    "is",
    "significant",
    "improvement",
    "over",
    "previous",
    "work",
    "on",
    "data",
    "_MATH_",
    "_CITE_",
    "_REF_",
    "equation",
    "follows",
    "from",
    "lemma",
    "hence",
    "proof",
    "theorem",
    "each",
    "layer",
    "attention",
    "heads",
    "are",
    "computed",
    "as",
    "described",
    "section",
    "experiments",
    "were",
    "performed",
    "using",
    "standard",
    "settings",
]


def _sentences(rng: np.random.Generator, n: int) -> list[Example]:
    examples = []
    for i in range(n):
        length = int(rng.integers(7, 19))
        words = [str(w) for w in rng.choice(_VOCAB, size=length)]
        text = " ".join(words) + " ."
        words_, starts, ends = tokenize_words(text)
        kind = KINDS[i % len(KINDS)]
        label = kind != "none"
        rationale: tuple[int, ...] = ()
        if label and i % 11 != 3:  # a few edited sentences without a usable rationale
            size = int(rng.integers(1, 4))
            rationale = tuple(sorted(int(x) for x in rng.choice(len(words_) - 1, size, False)))
        examples.append(
            Example(
                id=f"s{i + 1:04d}",
                text=text,
                words=tuple(words_),
                starts=tuple(starts),
                ends=tuple(ends),
                label=label,
                rationale=rationale,
                kind=kind,
                split="test",
            )
        )
    return examples


def _outcome(rationale: list[int], scores: np.ndarray) -> dict[str, object]:
    """Agreement of one score vector with the rationale, by the engine's own metrics; the two
    faithfulness figures (which need a model) are stand-ins derived from the scores."""
    return {
        **asdict(plausibility(rationale, scores)),
        "comprehensiveness": float(scores[list(rationale)].sum()),
        "sufficiency": float(1 - scores[list(rationale)].sum()),
    }


def _run_tables(
    rng: np.random.Generator, run_id: str, focus: float, accuracy: float, examples: list[Example]
) -> tuple[dict[str, pa.Table], dict[str, float]]:
    predictions, scores, heads, outcomes = [], [], [], []
    for index, example in enumerate(examples):
        n = len(example.words)
        seen = n if index % 13 != 7 else max(2, n // 2)  # a few sentences cut by the length limit
        right = rng.random() < accuracy
        pred = example.label if right else not example.label
        confidence = float(np.round(rng.uniform(0.5, 0.99), 4))
        prob = confidence if pred else 1 - confidence
        scorable = bool(example.label and example.rationale and max(example.rationale) < seen)
        predictions.append(
            {
                "run": run_id,
                "example": example.id,
                "label": example.label,
                "prob": prob,
                "pred": pred,
                "confidence": confidence,
                "seen_words": seen,
                "scorable": scorable,
            }
        )
        boost = np.zeros(seen)
        boost[[r for r in example.rationale if r < seen]] = focus
        grid = rng.random((LAYERS, HEADS)) * (0.3 + 0.1 * focus)
        heads.append(
            {
                "run": run_id,
                "example": example.id,
                "grid": grid.ravel().astype(np.float32).tolist(),
                "last": rng.random(HEADS * seen).astype(np.float32).tolist(),
            }
        )
        pairs = [(m, layer) for m in LAYER_METHODS for layer in range(1, LAYERS + 1)]
        pairs += [(m, 0) for m in FLAT_METHODS]
        for method, layer in pairs:
            strength = 0.0 if method == "random" else 0.4 + layer / LAYERS
            raw = rng.random(seen) + boost * strength
            values = (raw / raw.sum()).astype(np.float32)
            scores.append(
                {
                    "run": run_id,
                    "example": example.id,
                    "method": method,
                    "layer": layer,
                    "scores": values.tolist(),
                }
            )
            metrics = (
                _outcome(list(example.rationale), values)
                if scorable
                else dict.fromkeys(OUTCOME_METRICS)
            )
            outcomes.append(
                {
                    "run": run_id,
                    "method": method,
                    "layer": layer,
                    "example": example.id,
                    "label": example.label,
                    "pred": pred,
                    "confidence": confidence,
                    "kind": example.kind,
                    "rationale_size": len(example.rationale),
                    "seen_words": seen,
                    "scorable": scorable,
                    **metrics,
                }
            )
    labels = np.array([p["label"] for p in predictions])
    preds = np.array([p["pred"] for p in predictions])
    tp = int((labels & preds).sum())
    precision = tp / max(int(preds.sum()), 1)
    recall = tp / max(int(labels.sum()), 1)
    metrics = {
        "n": len(predictions),
        "accuracy": float((labels == preds).mean()),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-9),
    }
    tables = {
        "predictions": pa.Table.from_pylist(predictions),
        "scores": pa.Table.from_pylist(
            scores,
            schema=pa.schema(
                [
                    ("run", pa.string()),
                    ("example", pa.string()),
                    ("method", pa.string()),
                    ("layer", pa.int16()),
                    ("scores", pa.list_(pa.float32())),
                ]
            ),
        ),
        "heads": pa.Table.from_pylist(heads),
        "outcomes": pa.Table.from_pylist(outcomes, schema=OUTCOME_SCHEMA),
    }
    return tables, metrics


def _publish(store: Store, run: Run, chunks: list[dict[str, pa.Table]], workdir: Path) -> None:
    """Write a run to a staging store and merge it, the way an engine job does."""
    staging_path = workdir / f"{run.id}.staging.duckdb"
    with Store(staging_path) as staging:
        for chunk in chunks:
            staging.write_chunk(chunk)
        staging.record_run(run)
    store.merge_run(staging_path, run.id)
    staging_path.unlink()


def _run(run_id: str, model: str, corpus: str, metrics: dict[str, float], index: int) -> Run:
    return Run(
        id=run_id,
        kind="evaluate",
        model=model,
        checkpoint=model,
        corpus=corpus,
        split="test",
        layers=LAYERS,
        heads=HEADS,
        config={"methods": [*LAYER_METHODS, *FLAT_METHODS]},
        metrics=metrics,
        started=T0 + timedelta(hours=index),
        finished=T0 + timedelta(hours=index, minutes=5),
    )


def small_data(
    n_examples: int = 60, seed: int = 7, runs: tuple[tuple[str, str, float, float], ...] = RUNS
) -> tuple[list[Example], list[tuple[Run, dict[str, pa.Table]]]]:
    """The small store's contents as Python and Arrow values (tests count from these)."""
    rng = np.random.default_rng(seed)
    examples = _sentences(rng, n_examples)
    written = []
    for index, (run_id, model, focus, accuracy) in enumerate(runs):
        tables, metrics = _run_tables(rng, run_id, focus, accuracy, examples)
        written.append((_run(run_id, model, CORPUS, metrics, index), tables))
    return examples, written


def _write(path: Path, examples: list[Example], runs: list[tuple[Run, dict[str, pa.Table]]]):
    with Store(path) as store:
        store.write_examples(CORPUS, [examples_to_arrow(CORPUS, examples)])
        for run, tables in runs:
            _publish(store, run, [tables], path.parent)
    return path


def build_small(path: Path, n_examples: int = 60, seed: int = 7) -> Path:
    """Two evaluate runs (fine-tuned and random-init baseline) over ``n_examples`` sentences."""
    return _write(path, *small_data(n_examples, seed))


def build_with_ids(path: Path, ids: Sequence[str], seed: int = 7) -> Path:
    """One evaluate run (the fine-tuned one of RUNS) over sentences with these ids."""
    rng = np.random.default_rng(seed)
    examples = [replace(e, id=i) for e, i in zip(_sentences(rng, len(ids)), ids, strict=True)]
    run_id, model, focus, accuracy = RUNS[0]
    tables, metrics = _run_tables(rng, run_id, focus, accuracy, examples)
    return _write(path, examples, [(_run(run_id, model, CORPUS, metrics, 0), tables)])


# Text that a careless screen would read as rich/Textual markup or send to the terminal.
HOSTILE_TEXT = "see [/bold] and [link=x]y[/link] then \x1b[2J done ."
HOSTILE_ID = "[b]s0001[/b]"
HOSTILE_RUNS = (("[red]ft", "[b]minilm[/b]", 0.3, 0.85), ("base", "m[link=x]y[/link]", 0.0, 0.5))


def build_hostile(path: Path) -> Path:
    """A small store whose first example, run ids and model names look like markup and hold an
    escape sequence: every screen must show them as they are."""
    examples, _ = small_data(12)
    words, starts, ends = tokenize_words(HOSTILE_TEXT)
    first = Example(
        id=HOSTILE_ID,
        text=HOSTILE_TEXT,
        words=tuple(words),
        starts=tuple(starts),
        ends=tuple(ends),
        label=True,
        rationale=(1,),
        kind="deleted",
        split="test",
    )
    examples = [first, *examples[1:]]
    rng = np.random.default_rng(3)
    runs = []
    for index, (run_id, model, focus, accuracy) in enumerate(HOSTILE_RUNS):
        tables, metrics = _run_tables(rng, run_id, focus, accuracy, examples)
        runs.append((_run(run_id, model, CORPUS, metrics, index), tables))
    return _write(path, examples, runs)


def build_staged_run(staging_path: Path, run_id: str = "ft-again", seed: int = 8) -> Path:
    """A staging store holding one more run over the small store's examples, as a job leaves it."""
    examples, _ = small_data()
    tables, metrics = _run_tables(np.random.default_rng(seed), run_id, 0.9, 0.9, examples)
    with Store(staging_path) as staging:
        staging.write_chunk(tables)
        staging.record_run(_run(run_id, "minilm+ft:again", CORPUS, metrics, 5))
    return staging_path


def build_training_run(path: Path) -> Path:
    """Add a two-epoch training run (its history as engine.train records it) to a store."""
    history = [
        {"epoch": 1, "train_loss": 0.69, "dev_loss": 0.61, "dev_accuracy": 0.71, "dev_f1": 0.70},
        {"epoch": 2, "train_loss": 0.52, "dev_loss": 0.55, "dev_accuracy": 0.78, "dev_f1": 0.77},
    ]
    run = Run(
        id="train-demo",
        kind="train",
        model="minilm+ft:demo",
        checkpoint="checkpoints/train-demo/best",
        corpus=CORPUS,
        split="train",
        layers=LAYERS,
        heads=HEADS,
        config={"epochs": 2, "lr": 1e-4},
        metrics={
            "best_epoch": 2,
            "history": history,
            "dev": {"accuracy": 0.78, "f1": 0.77, "loss": 0.55},
            "accuracy": 0.78,
            "f1": 0.77,
        },
        started=T0 + timedelta(days=1),
        finished=T0 + timedelta(days=1, hours=1),
    )
    with Store(path) as store:
        store.record_run(run)
    return path


# -- the benchmark's million-example store ---------------------------------------------------

LARGE_CORPUS = "big"
LARGE_RUN = "big-run"
LARGE_PAIRS = (
    *(("attention", layer) for layer in range(1, LAYERS + 1)),
    ("rollout", LAYERS),
    ("grad", 0),
    ("integrated_gradients", 0),
    ("random", 0),
)  # 10 method/layer rows per example


def _lists(values: np.ndarray, lengths: np.ndarray) -> pa.ListArray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def _large_chunk(
    rng: np.random.Generator, start: int, size: int
) -> tuple[pa.Table, dict[str, pa.Table]]:
    ids = pa.array([f"b{i:07d}" for i in range(start, start + size)])
    lengths = rng.integers(6, 21, size).astype(np.int32)
    total = int(lengths.sum())
    vocab = np.array(_VOCAB)
    word_index = rng.integers(0, len(vocab), total)
    words = _lists(vocab[word_index], lengths)
    word_len = np.char.str_len(vocab)[word_index].astype(np.int32)
    # start of each word: running sum of (length + 1 space), restarted at each sentence
    advance = word_len + 1
    ends_cum = np.cumsum(advance)
    sentence_first = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    base = np.concatenate([[0], ends_cum])[sentence_first]
    starts = (ends_cum - advance - base).astype(np.int32)
    ends = (starts + word_len).astype(np.int32)
    kinds = np.array(KINDS)[rng.integers(0, len(KINDS), size)]
    labels = kinds != "none"
    rsize = np.where(labels, rng.integers(1, 4, size), 0).astype(np.int32)
    rationale = _lists(
        (rng.random(int(rsize.sum())) * np.repeat(lengths, rsize)).astype(np.int32), rsize
    )
    examples = pa.table(
        {
            "corpus": pa.array([LARGE_CORPUS] * size),
            "id": ids,
            "split": pa.array(["test"] * size),
            "text": pc.binary_join(words, " "),
            "words": words,
            "starts": _lists(starts, lengths),
            "ends": _lists(ends, lengths),
            "label": pa.array(labels),
            "rationale": rationale,
            "kind": pa.array(kinds),
        }
    )
    correct = rng.random(size) < 0.8
    preds = np.where(correct, labels, ~labels)
    confidence = rng.uniform(0.5, 1.0, size)
    predictions = pa.table(
        {
            "run": pa.array([LARGE_RUN] * size),
            "example": ids,
            "label": pa.array(labels),
            "prob": pa.array(np.where(preds, confidence, 1 - confidence)),
            "pred": pa.array(preds),
            "confidence": pa.array(confidence),
            "seen_words": pa.array(lengths),
            "scorable": pa.array(labels),
        }
    )
    pairs = len(LARGE_PAIRS)
    rep_ids = ids.take(pa.array(np.repeat(np.arange(size), pairs)))
    methods = np.tile(np.array([m for m, _ in LARGE_PAIRS]), size)
    layers = np.tile(np.array([la for _, la in LARGE_PAIRS], dtype=np.int16), size)
    score_lengths = np.repeat(lengths, pairs)
    scores = pa.table(
        {
            "run": pa.array([LARGE_RUN] * (size * pairs)),
            "example": rep_ids,
            "method": pa.array(methods),
            "layer": pa.array(layers),
            "scores": _lists(rng.random(int(score_lengths.sum()), dtype=np.float32), score_lengths),
        }
    )
    grid = HEADS * LAYERS
    heads = pa.table(
        {
            "run": pa.array([LARGE_RUN] * size),
            "example": ids,
            "grid": _lists(
                rng.random(size * grid, dtype=np.float32), np.full(size, grid, np.int32)
            ),
            "last": _lists(np.zeros(0, np.float32), np.zeros(size, np.int32)),
        }
    )
    # one outcome row per example x pair, pair-major (merge_run sorts them on publish)
    pair_of_row = np.repeat(np.arange(pairs), size)
    example_of_row = np.tile(np.arange(size), pairs)
    scorable = labels[example_of_row]
    missing = ~scorable
    n_out = size * pairs
    jaccard = rng.random(n_out).astype(np.float32)

    def metric(values: np.ndarray) -> pa.Array:
        return pa.array(values, mask=missing)

    outcomes = pa.table(
        {
            "run": pa.array([LARGE_RUN] * n_out),
            "method": pa.array(np.array([m for m, _ in LARGE_PAIRS])[pair_of_row]),
            "layer": pa.array(np.array([la for _, la in LARGE_PAIRS], np.int16)[pair_of_row]),
            "example": ids.take(pa.array(example_of_row)),
            "label": pa.array(labels[example_of_row]),
            "pred": pa.array(preds[example_of_row]),
            "confidence": pa.array(confidence[example_of_row]),
            "kind": pa.array(kinds[example_of_row]),
            "rationale_size": pa.array(rsize[example_of_row].astype(np.int16)),
            "seen_words": pa.array(lengths[example_of_row]),
            "scorable": pa.array(scorable),
            "exact": metric(jaccard > 0.9),
            "top3": metric(jaccard > 0.3),
            "hit1": metric(jaccard > 0.5),
            "jaccard": metric(jaccard),
            "jaccard50": metric(jaccard >= 0.5),
            "token_f1": metric(jaccard),
            "auprc": metric(rng.random(n_out).astype(np.float32)),
            "comprehensiveness": metric(rng.random(n_out).astype(np.float32)),
            "sufficiency": metric(rng.random(n_out).astype(np.float32)),
        },
        schema=OUTCOME_SCHEMA,
    )
    return examples, {
        "predictions": predictions,
        "scores": scores,
        "heads": heads,
        "outcomes": outcomes,
    }


def build_large(
    path: Path, n_examples: int = 1_000_000, chunk: int = 100_000, seed: int = 11
) -> Path:
    """One run over ``n_examples`` sentences with 10 method/layer rows each, through a staging
    store and ``merge_run`` like a real job."""
    rng = np.random.default_rng(seed)
    workdir = Path(tempfile.mkdtemp(prefix="editlens-large-", dir=path.parent))
    staging_path = workdir / "staging.duckdb"
    with Store(path) as store:
        example_tables = []
        with Store(staging_path) as staging:
            for start in range(0, n_examples, chunk):
                examples, tables = _large_chunk(rng, start, min(chunk, n_examples - start))
                example_tables.append(examples)
                staging.write_chunk(tables)
            staging.record_run(
                _run(LARGE_RUN, "minilm+ft:big", LARGE_CORPUS, {"n": n_examples, "f1": 0.8}, 0)
            )
        store.write_examples(LARGE_CORPUS, example_tables)
        store.merge_run(staging_path, LARGE_RUN)
    staging_path.unlink()
    workdir.rmdir()
    return path


def build_pairs(folder: Path) -> Path:
    """A store whose corpus holds sentences and their edited twins (``<id>/edited``) under one
    run, ``pairs-run``."""
    from engine.released import edited_counterpart

    examples = [e for e in small_data()[0] if e.kind == "deleted" and e.rationale][:6]
    examples += [edited_counterpart(e) for e in examples]
    tables, metrics = _run_tables(np.random.default_rng(3), "pairs-run", 0.5, 0.9, examples)
    path = folder / "pairs.duckdb"
    with Store(path) as writer:
        writer.write_examples(CORPUS, [examples_to_arrow(CORPUS, examples)])
        _publish(writer, _run("pairs-run", "minilm+ft:demo", CORPUS, metrics, 0), [tables], folder)
    return path


async def settle(pilot, quiet: float = 0.0) -> None:
    """Let timers (the search's debounce) fire, then wait for every worker and repaint."""
    if quiet:
        await pilot.pause(quiet)
    for _ in range(3):
        for _ in range(50):
            try:
                await pilot.app.workers.wait_for_complete()
                break
            except WorkerCancelled:  # an exclusive worker replaced by a newer one: wait for it
                await pilot.pause()
        await pilot.pause()

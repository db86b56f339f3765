"""Evaluation: predictions, word scores and agreement metrics for one model on one corpus split.

A job reads its examples into its own staging store, writes results there chunk by chunk (so a
killed job resumes where it stopped), and publishes everything to the main store in one
transaction at the end: a run is visible complete or not at all.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from engine.align import encode
from engine.attribution import METHODS, Context, cls_rows, token_to_word_matrix
from engine.batching import bucketed, collate
from engine.corpus import SPLITS
from engine.errors import EditlensError
from engine.faithfulness import class_probabilities, without_and_only
from engine.metrics import (
    PLAUSIBILITY_METRICS,
    Classification,
    classification,
    plausibility_batch,
    rank_words,
)
from engine.models import LoadedModel, load_model, model_label, slug
from engine.specs import EvalSpec
from engine.store import Run, Store, publish_run

ALL_METHODS = tuple(METHODS)
FAITHFULNESS = ("comprehensiveness", "sufficiency")
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


def run_id_for(spec: EvalSpec) -> str:
    """Deterministic, so rerunning the same evaluation finds its staging store and resumes."""
    digest = hashlib.sha1(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:8]
    return f"eval-{slug(model_label(spec.model))}-{slug(spec.corpus)}-{spec.split}-{digest}"


def staging_dir(db: Path) -> Path:
    """Where unfinished jobs keep their work, beside the store they will be published to."""
    return db.parent / f".{db.name}.staging"


def evaluate(
    db: Path,
    spec: EvalSpec,
    *,
    merge: bool = True,
    on_progress: Callable[[EvalProgress], None] | None = None,
) -> EvalResult:
    """Evaluate ``spec.model`` on ``spec.corpus``; every check happens before anything is written."""
    unknown = [m for m in spec.methods if m not in METHODS]
    if unknown or not spec.methods:
        raise EditlensError(
            f"unknown method {', '.join(unknown) or '(none)'}; use {', '.join(METHODS)}"
        )
    if spec.split not in (*SPLITS, "all"):
        raise EditlensError(f"unknown split {spec.split!r}; use train, dev, test or all")
    splits = list(SPLITS) if spec.split == "all" else [spec.split]
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
        run_id = run_id_for(spec)
        staging_path = staging_dir(db) / f"{run_id}.duckdb"
        staging_path.parent.mkdir(parents=True, exist_ok=True)
        staging = Store(staging_path)
        if not staging.has_corpus(spec.corpus):
            batches = main.example_batches(spec.corpus, splits=splits, limit=spec.limit)
            staging.write_examples(spec.corpus, (pa.Table.from_batches([b]) for b in batches))
    started = datetime.now()
    with staging:
        evaluator = _Evaluator(spec, loaded, run_id)
        done = staging.done_examples(run_id)
        total = staging.count_examples(spec.corpus)
        progress_base, clock, after = len(done), time.perf_counter(), ""
        while (chunk := staging.examples_after(spec.corpus, after, CHUNK_ROWS)).num_rows:
            after = chunk.column("id")[-1].as_py()
            todo = chunk.filter(
                pc.invert(pc.is_in(chunk.column("id"), pa.array(list(done), pa.string())))
            )
            if todo.num_rows:
                staging.write_chunk(evaluator.process(todo))
            done.update(chunk.column("id").to_pylist())
            if on_progress:
                rate = (len(done) - progress_base) / max(time.perf_counter() - clock, 1e-9)
                on_progress(EvalProgress(len(done), total, rate))
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
                config=asdict(spec),
                metrics=asdict(figures),
                started=started,
                finished=datetime.now(),
            )
        )
    if merge:
        publish_run(db, staging_path, run_id)
    return EvalResult(
        run_id, evaluator.display_name, staging_path, merge, figures, total, progress_base
    )


@dataclass
class _Rows:
    """Column lists for one chunk of each run table."""

    predictions: dict[str, list] = field(default_factory=dict)
    scores: dict[str, list] = field(default_factory=dict)
    heads: dict[str, list] = field(default_factory=dict)
    outcomes: dict[str, list] = field(default_factory=dict)

    def add(self, table: str, **values: object) -> None:
        columns = getattr(self, table)
        for name, value in values.items():
            columns.setdefault(name, []).append(value)


_LIST_TYPES = {
    "scores": pa.list_(pa.float32()),
    "grid": pa.list_(pa.float32()),
    "last": pa.list_(pa.float32()),
}


class _Evaluator:
    """Turns chunks of examples into rows of the run tables."""

    def __init__(self, spec: EvalSpec, loaded: LoadedModel, run_id: str) -> None:
        self.spec, self.loaded, self.run_id = spec, loaded, run_id
        self.model = loaded.model.eval()
        self.pad_id = loaded.tokenizer.pad_token_id
        self.methods = [METHODS[name] for name in spec.methods]
        self.layers = sorted(spec.layers) or list(range(1, loaded.layers + 1))
        self.needs_attentions = any(m.needs_attentions for m in self.methods)
        self.display_name = spec.label or model_label(spec.model)

    def _method_layers(self, layered: bool) -> list[int]:
        return self.layers if layered else [0]

    def process(self, chunk: pa.Table) -> dict[str, pa.Table]:
        ids = chunk.column("id").to_pylist()
        labels = chunk.column("label").to_pylist()
        rationales = chunk.column("rationale").to_pylist()
        kinds = chunk.column("kind").to_pylist()
        encoded = encode(
            self.loaded.tokenizer,
            chunk.column("text").to_pylist(),
            chunk.column("starts").to_pylist(),
            chunk.column("ends").to_pylist(),
            self.spec.max_length,
        )
        rows = _Rows()
        faithful: list[tuple[int, int, set[int]]] = []  # (outcome row, example row, top-k words)
        confidence = np.zeros(len(ids))
        predicted_class = np.zeros(len(ids), dtype=np.int64)
        for members in bucketed([len(e.input_ids) for e in encoded], self.spec.batch_size):
            batch = collate(encoded, members, self.pad_id)
            with torch.inference_mode():
                out = self.model(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask,
                    output_attentions=self.needs_attentions,
                )
            probabilities = out.logits.softmax(
                dim=-1
            ).clone()  # (batch, 2); clone: leave inference mode
            attentions = tuple(a.clone() for a in out.attentions) if self.needs_attentions else None
            predicted = probabilities.argmax(dim=-1)
            ctx = Context(
                model=self.model,
                batch=batch,
                example_ids=[ids[r] for r in members],
                attentions=attentions,
                predicted=predicted,
                to_words=token_to_word_matrix(batch.word_of_token, batch.words),
                seed=self.spec.seed,
                ig_steps=self.spec.ig_steps,
            )
            with torch.inference_mode(not any(m.needs_gradients for m in self.methods)):
                scored = {
                    m.name: m.scores(ctx).detach().numpy() for m in self.methods
                }  # (batch, L or 1, words)
            heads = (
                (cls_rows(attentions) @ ctx.to_words.unsqueeze(1)).numpy() if attentions else None
            )  # (batch, L, H, words)
            for b, r in enumerate(members):
                seen = encoded[r].seen_words
                rationale = rationales[r]
                scorable = bool(labels[r] and rationale and max(rationale) < seen)
                confidence[r] = float(probabilities[b].max())
                predicted_class[r] = int(predicted[b])
                rows.add(
                    "predictions",
                    run=self.run_id,
                    example=ids[r],
                    label=labels[r],
                    prob=float(probabilities[b, 1]),
                    pred=bool(predicted[b]),
                    confidence=confidence[r],
                    seen_words=seen,
                    scorable=scorable,
                )
                vectors, keys = [], []
                for method in self.methods:
                    for layer in self._method_layers(method.layered):
                        vector = scored[method.name][b, layer - 1 if method.layered else 0, :seen]
                        rows.add(
                            "scores",
                            run=self.run_id,
                            example=ids[r],
                            method=method.name,
                            layer=layer,
                            scores=vector.tolist(),
                        )
                        vectors.append(vector)
                        keys.append((method, layer))
                if scorable and heads is not None:
                    cls = heads[b, :, :, :seen]  # (layers, heads, words)
                    grid = cls[:, :, rationale].sum(-1) / np.maximum(cls.sum(-1), 1e-12)
                    rows.add(
                        "heads",
                        run=self.run_id,
                        example=ids[r],
                        grid=grid.ravel().tolist(),
                        last=cls[-1].ravel().tolist(),
                    )
                results = plausibility_batch(rationale, np.stack(vectors)) if scorable else None
                for index, ((method, layer), vector) in enumerate(zip(keys, vectors, strict=True)):
                    metrics = {name: None for name in (*PLAUSIBILITY_METRICS, *FAITHFULNESS)}
                    if results is not None:
                        metrics |= {
                            name: getattr(results[index], name) for name in PLAUSIBILITY_METRICS
                        }
                    rows.add(
                        "outcomes",
                        run=self.run_id,
                        method=method.name,
                        layer=layer,
                        example=ids[r],
                        label=labels[r],
                        pred=bool(predicted[b]),
                        confidence=confidence[r],
                        kind=kinds[r],
                        rationale_size=len(rationale),
                        seen_words=seen,
                        scorable=scorable,
                        **metrics,
                    )
                    last_layer = layer == self._method_layers(method.layered)[-1]
                    if scorable and self.spec.faithfulness and last_layer:
                        top = set(rank_words(vector)[: len(rationale)].tolist())
                        faithful.append((len(rows.outcomes["run"]) - 1, r, top))
        if faithful:
            self._add_faithfulness(rows, encoded, faithful, confidence, predicted_class)
        return {
            name: _table(getattr(rows, name))
            for name in ("predictions", "scores", "heads", "outcomes")
            if getattr(rows, name)
        }

    def _add_faithfulness(
        self, rows: _Rows, encoded, faithful, confidence, predicted_class
    ) -> None:
        """p(pred | x) minus p(pred | x without its top-k words) and p(pred | only those words)."""
        sequences, classes = [], []
        for _, r, top in faithful:
            without, only = without_and_only(encoded[r], top)
            sequences += [without, only]
            classes += [int(predicted_class[r])] * 2
        p = class_probabilities(self.model, sequences, classes, self.pad_id, self.spec.batch_size)
        for i, (row, r, _) in enumerate(faithful):
            rows.outcomes["comprehensiveness"][row] = float(confidence[r] - p[2 * i])
            rows.outcomes["sufficiency"][row] = float(confidence[r] - p[2 * i + 1])


def _table(columns: dict[str, list]) -> pa.Table:
    return pa.table(
        {name: pa.array(values, _LIST_TYPES.get(name)) for name, values in columns.items()}
    )

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
import torch

from engine.align import Encoded, encode
from engine.attribution import Inputs, build, cls_rows, token_to_word_matrix, word_scores
from engine.batching import Batch, bucketed, collate
from engine.corpus import SPLITS
from engine.errors import EditlensError
from engine.faithfulness import class_probabilities, without_and_only
from engine.metrics import (
    Classification,
    classification,
    faithfulness,
    plausibility_batch,
    rank_words,
)
from engine.models import LoadedModel, load_model, model_label, slug
from engine.specs import EvalSpec
from engine.store import Run, Store, publish_run
from engine.vocabulary import METHOD_NAMES, METRIC_NAMES, METRICS

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
    spec.check()
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
        evaluator = _Evaluator(spec, loaded, run_id)
        resumed = staging.count_done(run_id)
        total = staging.count_examples(spec.corpus)  # the staging store holds just these
        done, clock = resumed, time.perf_counter()
        for chunk in staging.pending_example_batches(spec.corpus, run_id, rows=CHUNK_ROWS):
            staging.write_chunk(evaluator.process(chunk))
            done += chunk.num_rows
            if on_progress:
                rate = (done - resumed) / max(time.perf_counter() - clock, 1e-9)
                on_progress(EvalProgress(done, total, rate))
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
    return EvalResult(run_id, evaluator.display_name, staging_path, merge, figures, total, resumed)


@dataclass
class _Rows:
    """Column lists for one chunk of each run table."""

    predictions: dict[str, list] = field(default_factory=dict)
    scores: dict[str, list] = field(default_factory=dict)
    heads: dict[str, list] = field(default_factory=dict)
    outcomes: dict[str, list] = field(default_factory=dict)

    def add(self, table: str, **values: object) -> int:
        """Append one row; returns its index in that table's chunk."""
        columns = getattr(self, table)
        for name, value in values.items():
            columns.setdefault(name, []).append(value)
        return len(columns["run"]) - 1

    def tables(self) -> dict[str, pa.Table]:
        return {
            name: _table(getattr(self, name))
            for name in ("predictions", "scores", "heads", "outcomes")
            if getattr(self, name)
        }


_LIST_TYPES = {
    "scores": pa.list_(pa.float32()),
    "grid": pa.list_(pa.float32()),
    "last": pa.list_(pa.float32()),
}
PLAUSIBILITY = tuple(m.name for m in METRICS if m.family == "plausibility")
FAITHFULNESS = tuple(m.name for m in METRICS if m.family == "faithfulness")


@dataclass(frozen=True)
class _Example:
    """One example of the chunk, with its tokens."""

    id: str
    label: bool
    rationale: list[int]
    kind: str
    encoded: Encoded

    @property
    def scorable(self) -> bool:
        """Needs an edit, has a rationale, and the model saw all of it."""
        rationale, seen = self.rationale, self.encoded.seen_words
        return bool(self.label and rationale and max(rationale) < seen)


@dataclass(frozen=True)
class _Forward:
    """The forward pass of one batch."""

    probabilities: torch.Tensor  # (batch, 2)
    predicted: torch.Tensor  # (batch,) argmax class
    attentions: tuple[torch.Tensor, ...] | None  # per layer (batch, heads, tokens, tokens)


@dataclass(frozen=True)
class _Scored:
    """One method's word scores at one stored layer (0 for methods without layers)."""

    method: str
    layer: int
    words: np.ndarray  # (batch, words)
    last: bool  # the method's last stored layer: the one faithfulness is measured at


@dataclass(frozen=True)
class _Ablation:
    """An outcome row whose faithfulness waits for two forward passes on edited inputs."""

    row: int
    example: _Example
    predicted: int
    p_full: float  # p(predicted | x)
    top: set[int]  # the top-k words, k = |R|


class _Evaluator:
    """Turns chunks of examples into rows of the run tables: forward, attribute, rows, faithfulness."""

    def __init__(self, spec: EvalSpec, loaded: LoadedModel, run_id: str) -> None:
        self.spec, self.loaded, self.run_id = spec, loaded, run_id
        self.model = loaded.model.eval()
        self.pad_id = loaded.tokenizer.pad_token_id
        self.methods = build(spec.methods, spec)
        self.layers = sorted(spec.layers) or list(range(1, loaded.layers + 1))
        self.needs_attentions = any(m.needs_attentions for m in self.methods)
        self.display_name = spec.label or model_label(spec.model)

    def process(self, chunk: pa.Table) -> dict[str, pa.Table]:
        examples = self._examples(chunk)
        encoded = [e.encoded for e in examples]
        rows, ablations = _Rows(), []
        for members in bucketed([len(e.input_ids) for e in encoded], self.spec.batch_size):
            batch = collate(encoded, members, self.pad_id)
            matrix = token_to_word_matrix(batch.word_of_token, batch.words)  # (b, tokens, words)
            forward = self._forward(batch)
            scored = self._attribute(batch, forward, matrix, [examples[r].id for r in members])
            heads = (
                (cls_rows(forward.attentions) @ matrix.unsqueeze(1)).numpy()
                if forward.attentions
                else None
            )  # (batch, layers, heads, words)
            for b, r in enumerate(members):
                ablations += self._add_rows(
                    rows,
                    examples[r],
                    forward.probabilities[b],
                    int(forward.predicted[b]),
                    [(s, s.words[b]) for s in scored],
                    None if heads is None else heads[b],
                )
        self._add_faithfulness(rows, ablations)
        return rows.tables()

    def _examples(self, chunk: pa.Table) -> list[_Example]:
        encoded = encode(
            self.loaded.tokenizer,
            chunk.column("text").to_pylist(),
            chunk.column("starts").to_pylist(),
            chunk.column("ends").to_pylist(),
            self.spec.max_length,
        )
        columns = [chunk.column(name).to_pylist() for name in ("id", "label", "rationale", "kind")]
        return [_Example(*values, e) for *values, e in zip(*columns, encoded, strict=True)]

    def _forward(self, batch: Batch) -> _Forward:
        with torch.inference_mode():
            out = self.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                output_attentions=self.needs_attentions,
            )
        # Clones leave inference mode, so gradient methods may use them.
        probabilities = out.logits.softmax(dim=-1).clone()
        attentions = tuple(a.clone() for a in out.attentions) if self.needs_attentions else None
        return _Forward(probabilities, probabilities.argmax(dim=-1), attentions)

    def _attribute(
        self, batch: Batch, forward: _Forward, matrix: torch.Tensor, ids: list[str]
    ) -> list[_Scored]:
        """Every method's word scores at every stored layer, for the whole batch."""
        inputs = Inputs(self.model, batch, ids, forward.attentions, target=forward.predicted)
        scored = []
        for method in self.methods:
            words = word_scores(method, inputs, matrix, "sum").numpy()  # (batch, layers|1, words)
            layers = self.layers if method.layered else [0]
            for layer in layers:
                index = layer - 1 if method.layered else 0
                scored.append(_Scored(method.name, layer, words[:, index], layer == layers[-1]))
        return scored

    def _add_rows(
        self,
        rows: _Rows,
        example: _Example,
        probabilities: torch.Tensor,
        predicted: int,
        scored: list[tuple[_Scored, np.ndarray]],
        heads: np.ndarray | None,
    ) -> list[_Ablation]:
        """One example's prediction, scores, head grid and outcomes; returns what awaits ablation."""
        seen, scorable, rationale = example.encoded.seen_words, example.scorable, example.rationale
        confidence = float(probabilities.max())
        rows.add(
            "predictions",
            run=self.run_id,
            example=example.id,
            label=example.label,
            prob=float(probabilities[1]),
            pred=bool(predicted),
            confidence=confidence,
            seen_words=seen,
            scorable=scorable,
        )
        vectors = [words[:seen] for _, words in scored]
        for (s, _), vector in zip(scored, vectors, strict=True):
            rows.add(
                "scores",
                run=self.run_id,
                example=example.id,
                method=s.method,
                layer=s.layer,
                scores=vector.tolist(),
            )
        if scorable and heads is not None:
            cls = heads[:, :, :seen]  # (layers, heads, words)
            grid = cls[:, :, rationale].sum(-1) / np.maximum(cls.sum(-1), 1e-12)
            rows.add(
                "heads",
                run=self.run_id,
                example=example.id,
                grid=grid.ravel().tolist(),
                last=cls[-1].ravel().tolist(),
            )
        results = (
            plausibility_batch(rationale, np.stack(vectors)) if scorable else [None] * len(vectors)
        )
        ablations = []
        for (s, _), vector, result in zip(scored, vectors, results, strict=True):
            metrics = dict.fromkeys(METRIC_NAMES)
            if result is not None:
                metrics |= {name: getattr(result, name) for name in PLAUSIBILITY}
            row = rows.add(
                "outcomes",
                run=self.run_id,
                method=s.method,
                layer=s.layer,
                example=example.id,
                label=example.label,
                pred=bool(predicted),
                confidence=confidence,
                kind=example.kind,
                rationale_size=len(rationale),
                seen_words=seen,
                scorable=scorable,
                **metrics,
            )
            if scorable and self.spec.faithfulness and s.last:
                top = set(rank_words(vector)[: len(rationale)].tolist())
                ablations.append(_Ablation(row, example, predicted, confidence, top))
        return ablations

    def _add_faithfulness(self, rows: _Rows, ablations: list[_Ablation]) -> None:
        """Comprehensiveness and sufficiency of each waiting row, from batched ablation passes."""
        if not ablations:
            return
        sequences, classes = [], []
        for a in ablations:
            sequences += without_and_only(a.example.encoded, a.top)
            classes += [a.predicted, a.predicted]
        p = class_probabilities(self.model, sequences, classes, self.pad_id, self.spec.batch_size)
        for i, a in enumerate(ablations):
            result = faithfulness(a.p_full, float(p[2 * i]), float(p[2 * i + 1]))
            for name in FAITHFULNESS:
                rows.outcomes[name][a.row] = getattr(result, name)


def _table(columns: dict[str, list]) -> pa.Table:
    return pa.table(
        {name: pa.array(values, _LIST_TYPES.get(name)) for name, values in columns.items()}
    )

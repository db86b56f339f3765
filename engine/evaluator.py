"""One chunk of examples in, rows of the run tables out: forward, attribute, rows, faithfulness.

The evaluator is the pure part of an evaluation job (``engine.evaluate`` reads the staging
store, calls ``Evaluator.process`` per chunk and writes what it returns): a forward pass per
length bucket, every method's word scores, one prediction, score, head-grid and outcome row per
example, then the faithfulness passes of the whole chunk at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import torch

from engine.align import Encoded, encode
from engine.attribution import Inputs, build, cls_rows, token_to_word_matrix, word_scores
from engine.batching import Batch, bucketed, collate, pass_tokens
from engine.device import autocast, to_float32
from engine.faithfulness import class_probabilities, without_and_only
from engine.metrics import aopc, aopc_sizes, faithfulness, plausibility_batch, rank_words
from engine.models import LoadedModel, model_label
from engine.specs import EvalSpec
from engine.vocabulary import METRIC_NAMES, METRICS


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
    hidden_states: tuple[torch.Tensor, ...] | None  # per layer's input (batch, tokens, dim)


@dataclass(frozen=True)
class _Scored:
    """One method's word scores at one stored layer (0 for methods without layers)."""

    method: str
    layer: int
    words: np.ndarray  # (batch, words)
    last: bool  # the method's last stored layer: the one faithfulness is measured at
    checks: dict[str, np.ndarray]  # the method's checks of itself, (batch,) by metric name


@dataclass(frozen=True)
class _Ablation:
    """An outcome row whose faithfulness waits for forward passes on edited inputs."""

    row: int
    example: _Example
    predicted: int
    p_full: float  # p(predicted | x)
    ranking: np.ndarray  # word indices, highest score first


class Evaluator:
    """Turns chunks of examples into rows of the run tables: forward, attribute, rows, faithfulness."""

    def __init__(
        self, spec: EvalSpec, loaded: LoadedModel, run_id: str, device: torch.device | None = None
    ) -> None:
        self.spec, self.loaded, self.run_id = spec, loaded, run_id
        self.device = device or torch.device("cpu")
        self.model = loaded.model.to(self.device).eval()
        self.pad_id = loaded.tokenizer.pad_token_id
        self.methods = build(spec.methods, spec)
        self.layers = sorted(spec.layers) or list(range(1, loaded.layers + 1))
        self.needs_attentions = any(m.needs_attentions for m in self.methods)
        self.needs_hidden_states = any(m.needs_hidden_states for m in self.methods)
        self.display_name = spec.label or model_label(spec.model)

    def process(
        self, chunk: pa.Table, on_batch: Callable[[int], None] | None = None
    ) -> dict[str, pa.Table]:
        """A chunk's rows for every table; ``on_batch`` hears each batch's size as it is done,
        so progress moves per batch rather than per chunk."""
        return self.process_prepared(self.prepare(chunk), on_batch)

    def prepare(self, chunk: pa.Table) -> list[_Example]:
        """A chunk read and tokenised: the CPU work that can run while a device computes the
        chunk before it (``engine.evaluate`` does so on a thread)."""
        return self._examples(chunk)

    def process_prepared(
        self, examples: list[_Example], on_batch: Callable[[int], None] | None = None
    ) -> dict[str, pa.Table]:
        """``process`` after ``prepare``."""
        encoded = [e.encoded for e in examples]
        rows, ablations = _Rows(), []
        for members in bucketed([len(e.input_ids) for e in encoded], self.spec.batch_size):
            batch = collate(encoded, members, self.pad_id).to(self.device)
            matrix = token_to_word_matrix(batch.word_of_token, batch.words)  # (b, tokens, words)
            with autocast(self.device, self.spec.precision):
                forward = self._forward(batch)
                scored = self._attribute(batch, forward, matrix, [examples[r].id for r in members])
            heads = (
                to_float32(cls_rows(forward.attentions) @ matrix.unsqueeze(1)).numpy()
                if forward.attentions
                else None
            )  # (batch, layers, heads, words)
            # one copy to the host per batch: reading a device tensor per example would make the
            # device wait for the host at every sentence
            probabilities = to_float32(forward.probabilities).numpy()
            predicted = forward.predicted.tolist()
            for b, r in enumerate(members):
                ablations += self._add_rows(
                    rows,
                    examples[r],
                    probabilities[b],
                    predicted[b],
                    scored,
                    b,
                    None if heads is None else heads[b],
                )
            if on_batch:
                on_batch(len(members))
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
                output_hidden_states=self.needs_hidden_states,
            )
        # Clones leave inference mode, so gradient methods may use them.
        # float32 whatever the compute precision: methods and stored scores read these
        probabilities = out.logits.float().softmax(dim=-1).clone()
        attentions = (
            tuple(a.float().clone() for a in out.attentions) if self.needs_attentions else None
        )
        hidden = tuple(h.clone() for h in out.hidden_states) if self.needs_hidden_states else None
        return _Forward(probabilities, probabilities.argmax(dim=-1), attentions, hidden)

    def _attribute(
        self, batch: Batch, forward: _Forward, matrix: torch.Tensor, ids: list[str]
    ) -> list[_Scored]:
        """Every method's word scores at every stored layer, for the whole batch."""
        # The class gradient and perturbation methods explain: "needs edit" (1), or the prediction.
        edit = torch.ones_like(forward.predicted)
        target = edit if self.spec.explain == "edit" else forward.predicted
        inputs = Inputs(self.model, batch, ids, forward.attentions, target, forward.hidden_states)
        scored = []
        for method in self.methods:
            values, checks = word_scores(method, inputs, matrix, self.spec.aggregation)
            words = to_float32(values).numpy()  # (batch, layers or 1, words)
            per_example = {name: to_float32(check).numpy() for name, check in checks.items()}
            layers = self.layers if method.layered else [0]
            for layer in layers:
                index = layer - 1 if method.layered else 0
                last = layer == layers[-1]
                scored.append(_Scored(method.name, layer, words[:, index], last, per_example))
        return scored

    def _add_rows(
        self,
        rows: _Rows,
        example: _Example,
        probabilities: np.ndarray,
        predicted: int,
        scored: list[_Scored],
        b: int,
        heads: np.ndarray | None,
    ) -> list[_Ablation]:
        """One example's (row ``b`` of the batch) prediction, scores, head grid and outcomes;
        returns what awaits ablation."""
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
        vectors = [s.words[b, :seen] for s in scored]
        for s, vector in zip(scored, vectors, strict=True):
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
        for s, vector, result in zip(scored, vectors, results, strict=True):
            metrics = dict.fromkeys(METRIC_NAMES)
            if result is not None:
                metrics |= {name: getattr(result, name) for name in PLAUSIBILITY}
            metrics |= {name: float(check[b]) for name, check in s.checks.items()}
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
                ablations.append(_Ablation(row, example, predicted, confidence, rank_words(vector)))
        return ablations

    def _add_faithfulness(self, rows: _Rows, ablations: list[_Ablation]) -> None:
        """Every faithfulness metric of each waiting row: comprehensiveness and sufficiency at
        k = |R|, and their AOPC over ``aopc_sizes``. The edited sentences of the whole chunk run
        in batched passes, each distinct one once (methods often share their top words)."""
        if not ablations:
            return
        slots: dict[tuple[str, str, frozenset[int]], int] = {}  # (example, mode, words) -> index
        sequences, classes = [], []
        plans = []
        for a in ablations:
            sizes = aopc_sizes(len(a.example.rationale), a.example.encoded.seen_words)
            plan = {}
            for size in sizes:
                top = frozenset(a.ranking[:size].tolist())
                pair = without_and_only(a.example.encoded, set(top))
                for mode, sequence in zip(("without", "only"), pair, strict=True):
                    if (a.example.id, mode, top) not in slots:
                        slots[a.example.id, mode, top] = len(sequences)
                        sequences.append(sequence)
                        classes.append(a.predicted)
                plan[size] = (slots[a.example.id, "without", top], slots[a.example.id, "only", top])
            plans.append((a, sizes, plan))
        tokens = pass_tokens(self.model, backward=False)
        p = class_probabilities(self.model, sequences, classes, self.pad_id, tokens)
        for a, sizes, plan in plans:
            without, only = plan[len(a.example.rationale)]
            at_k = faithfulness(a.p_full, float(p[without]), float(p[only]))
            curve = aopc(
                a.p_full, [p[plan[size][0]] for size in sizes], [p[plan[size][1]] for size in sizes]
            )
            for name, value in (asdict(at_k) | asdict(curve)).items():
                rows.outcomes[name][a.row] = value


def _table(columns: dict[str, list]) -> pa.Table:
    return pa.table(
        {name: pa.array(values, _LIST_TYPES.get(name)) for name, values in columns.items()}
    )

"""The study's figures: what its runs measured, read from the store, each with a bootstrap 95 %
interval. Pure data: ``engine.study_page`` writes the prose around it, ``engine.study`` runs the
work that produces it; neither is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.metrics import Estimate, bootstrap_draws, mcnemar, mean_with_ci, paired_difference
from engine.vocabulary import (
    AGGREGATIONS,
    BASELINE_METHOD,
    FORWARD_METHODS,
    HEADLINE_METHOD,
    HEADLINE_METRIC,
    METRICS,
    is_layered,
    method_order,
)

DELETED = "aesw-deleted"  # minimal pairs from the released deleted.jsonl.gz: trained and tested
SPELLING = "aesw-spelling"  # every row of spelling.jsonl.gz: the transfer test, never trained on
CORPORA = (DELETED, SPELLING)
CORPUS_TITLES = {DELETED: "deleted", SPELLING: "spelling"}
RESAMPLES = 1000
FAITHFULNESS = tuple(m.name for m in METRICS if m.family == "faithfulness")
CONVERGENCE = tuple(m.name for m in METRICS if m.family == "convergence")
# Stevens & Su, top-3 match on the sentences the model flags (deleted, spelling).
PAPER = {
    "BERT-base, fine-tuned": (0.709, 0.804),
    "RoBERTa-base, fine-tuned": (0.639, 0.738),
    "SciBERT, fine-tuned": (0.412, 0.573),
    "BERT-base, not fine-tuned": (0.085, 0.169),
    "random ranking": (0.1300, 0.1227),
}
PAPER_MODEL = "BERT-base (12 layers, 12 heads, 768 wide, 110 M parameters)"


def paper_counterpart(model: str, fine_tuned: bool) -> str | None:
    """The paper's row a model stands in for: MiniLM for BERT; none for random weights."""
    name = model.lower()
    if "random" in name:
        return None  # the paper had no randomly initialised model
    if "roberta" in name:
        return "RoBERTa-base, fine-tuned" if fine_tuned else None
    if "scibert" in name:
        return "SciBERT, fine-tuned" if fine_tuned else None
    return "BERT-base, fine-tuned" if fine_tuned else "BERT-base, not fine-tuned"


@dataclass(frozen=True)
class StudyRun:
    """One evaluation of the study: which model in which role on which data set."""

    run_id: str
    model: str  # the base model's name (minilm, minilm-random, ...)
    role: str  # "fine-tuned" or "not fine-tuned"
    seed: int | None  # fine-tuning seed; None for the baseline
    corpus: str
    epoch: int | None = None  # a kept epoch other than the one selected on dev; None: that one
    aggregation: str = "sum"  # how word scores were made from subwords'

    @property
    def main(self) -> bool:
        """The model's headline evaluation: the selected checkpoint, scores summed."""
        return self.epoch is None and self.aggregation == "sum"


@dataclass(frozen=True)
class Step:
    """One step of the study and its wall time (measured when the work was done)."""

    name: str
    seconds: float
    reused: bool  # nothing to do this time: ``seconds`` is from the run that did the work
    machine: str | None = None  # where it was measured ("2 CPU cores, load 3.1"); None: unknown


@dataclass
class ModelFigures:
    """One model in one role and its evaluation run per data set."""

    model: str
    role: str  # fine-tuned | not fine-tuned
    seed: int | None
    display: str  # what the store calls it
    layers: int
    heads: int
    runs: dict[str, str]  # corpus -> run id
    train: dict[str, Any] | None = None  # dev figures of the fine-tuning run
    classification: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # corpus -> ..

    @property
    def name(self) -> str:
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"{self.model} ({self.role}{seed})"

    def layer(self, method: str) -> int:
        """Where the study reads ``method``: the last layer if it has layers, else layer 0."""
        return self.layers if is_layered(method) else 0


@dataclass(frozen=True)
class CheckpointFigures:
    """One point of accuracy against interpretability on ``deleted``/test: a kept epoch of a
    fine-tuned model, or a model as it is (``epoch`` None)."""

    name: str  # the model's name on the page (ModelFigures.name)
    seed: int | None
    epoch: int | None
    selected: bool  # the epoch picked on dev (the model's evaluation with every method)
    dev_accuracy: float | None
    accuracy: Estimate
    top3: Estimate  # last-layer attention, every scorable sentence


@dataclass(frozen=True)
class Comparison:
    """Two (method, layer) slices of one run on the same sentences: the paired difference."""

    name: str
    corpus: str
    a: tuple[str, int]  # (method, layer)
    b: tuple[str, int]
    a_estimate: Estimate
    b_estimate: Estimate
    difference: Estimate  # a - b, resampling sentences with both figures kept together
    p: float  # exact McNemar on the sentences where the two disagree


@dataclass
class Figures:
    """Everything the page prints, read from the store (pure data: the page is a function of it)."""

    models: list[ModelFigures]
    rows: list[dict[str, Any]]  # report rows of the study's runs
    cis: dict[tuple[str, str, int, str, str], Estimate]  # (run, method, layer, population, metric)
    corpora: dict[str, dict[str, int]]  # corpus -> counts (examples, scorable, test ...)
    settings: dict[str, Any]  # the study's spec, as JSON-safe values
    steps: list[Step]
    written: str = ""
    checkpoints: list[CheckpointFigures] = field(default_factory=list)
    # (model name, corpus, aggregation) -> method -> top-3 (last layer, all scorable)
    aggregations: dict[tuple[str, str, str], dict[str, Estimate]] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)

    def estimate(
        self,
        run: str | None,
        method: str,
        layer: int,
        population: str,
        metric: str = HEADLINE_METRIC,
    ) -> Estimate | None:
        """One figure with its interval, or None where the study has none."""
        if run is None:
            return None
        return self.cis.get((run, method, layer, population, metric))

    def main_model(self) -> ModelFigures | None:
        """The first fine-tuned model: the one the page's prose talks about."""
        return next((m for m in self.models if m.role == "fine-tuned"), None)


def collect(
    db: Path,
    runs: Sequence[StudyRun],
    train_runs: dict[str, str],
    settings: dict[str, Any],
    steps: Sequence[Step],
) -> Figures:
    """Read the study's runs from the store and bootstrap a CI for every figure the page shows.

    ``train_runs`` maps "model/seed" to the fine-tuning run whose dev figures the page shows.
    """
    from engine.report import report_rows
    from engine.store import Store

    with Store(db, read_only=True) as store:
        by_key: dict[tuple[str, int | None], ModelFigures] = {}
        for study_run in (r for r in runs if r.main):
            run = store.get_run(study_run.run_id)
            key = (study_run.model, study_run.seed)
            if key not in by_key:
                by_key[key] = ModelFigures(
                    study_run.model, study_run.role, study_run.seed, run.model, run.layers,
                    run.heads, {},
                )  # fmt: skip
            figures = by_key[key]
            figures.runs[study_run.corpus] = run.id
            labels, preds = store.run_labels(run.id)
            figures.classification[study_run.corpus] = classification_cis(labels, preds)
        for (model, seed), figures in by_key.items():
            train_id = train_runs.get(f"{model}/{seed}")
            if train_id:
                train = store.get_run(train_id)
                figures.train = {
                    "run": train_id,
                    "dev": train.metrics.get("dev", {}),
                    "best_epoch": train.metrics.get("best_epoch"),
                    "history": train.metrics.get("history", []),
                }
        run_ids = [r.run_id for r in runs if r.main]
        rows = report_rows(store, run_ids) if run_ids else []
        last = {run_id: m.layers for m in by_key.values() for run_id in m.runs.values()}
        cis: dict[tuple[str, str, int, str, str], Estimate] = {}
        for row in rows:
            headline = row["layer"] in (0, last.get(row["run"], 0))
            if row["population"] == "flagged" and not (
                headline and row["method"] in (HEADLINE_METHOD, BASELINE_METHOD)
            ):
                continue
            wanted = [HEADLINE_METRIC]
            if headline and row["population"] == "all":
                wanted += [m for m in (*FAITHFULNESS, *CONVERGENCE) if row[m] is not None]
            for metric in wanted:
                values = store.outcome_values(
                    row["run"], row["method"], row["layer"], row["population"], metric
                )
                cis[(row["run"], row["method"], row["layer"], row["population"], metric)] = (
                    mean_with_ci(values, resamples=RESAMPLES, seed=0)
                )
        corpora = {
            c.name: {"examples": c.examples, "scorable": c.scorable, **c.by_split}
            for c in store.corpora()
            if c.name in CORPORA
        }
        models = list(by_key.values())
        extra = Figures(models, rows, cis, corpora, settings, list(steps))
        extra.checkpoints = _checkpoints(store, runs, by_key, cis)
        extra.aggregations = _aggregations(store, runs, by_key, cis)
        extra.comparisons = _comparisons(store, models, rows)
    extra.written = datetime.now().strftime("%Y-%m-%d %H:%M")
    return extra


def _top3(store: Any, run: str, method: str, layer: int) -> Estimate:
    values = store.outcome_values(run, method, layer, "all", HEADLINE_METRIC)
    return mean_with_ci(values, resamples=RESAMPLES, seed=0)


def _checkpoints(
    store: Any,
    runs: Sequence[StudyRun],
    by_key: dict[tuple[str, int | None], ModelFigures],
    cis: dict[tuple[str, str, int, str, str], Estimate],
) -> list[CheckpointFigures]:
    """Accuracy and last-layer attention's top-3 on ``deleted`` for every evaluated checkpoint
    (a model's main run has both already: they are read, not bootstrapped again)."""
    points = []
    for study_run in runs:
        if study_run.corpus != DELETED or study_run.aggregation != AGGREGATIONS[0]:
            continue
        figures = by_key.get((study_run.model, study_run.seed))
        if figures is None:
            continue
        history = (figures.train or {}).get("history") or []
        epoch = study_run.epoch or (figures.train or {}).get("best_epoch")
        dev = history[epoch - 1].get("dev_accuracy") if epoch and len(history) >= epoch else None
        if study_run.main:
            accuracy = figures.classification[DELETED]["accuracy"]
        else:
            accuracy = classification_cis(*store.run_labels(study_run.run_id))["accuracy"]
        key = (study_run.run_id, HEADLINE_METHOD, figures.layers, "all", HEADLINE_METRIC)
        top3 = cis.get(key) or _top3(store, study_run.run_id, HEADLINE_METHOD, figures.layers)
        points.append(
            CheckpointFigures(
                name=figures.name,
                seed=study_run.seed,
                epoch=epoch if study_run.seed is not None else None,
                selected=study_run.main,
                dev_accuracy=dev,
                accuracy=accuracy,
                top3=top3,
            )
        )
    return sorted(points, key=lambda p: (p.seed is None, p.name, p.epoch or 0))


def _aggregations(
    store: Any,
    runs: Sequence[StudyRun],
    by_key: dict[tuple[str, int | None], ModelFigures],
    cis: dict[tuple[str, str, int, str, str], Estimate],
) -> dict[tuple[str, str, str], dict[str, Estimate]]:
    """The forward-pass methods' top-3 under each subword aggregation, per model and data set."""
    out: dict[tuple[str, str, str], dict[str, Estimate]] = {}
    for study_run in runs:
        figures = by_key.get((study_run.model, study_run.seed))
        if study_run.epoch is not None or figures is None:
            continue
        estimates = {}
        for method in FORWARD_METHODS:
            layer = figures.layer(method)
            key = (study_run.run_id, method, layer, "all", HEADLINE_METRIC)
            estimates[method] = cis.get(key) or _top3(store, study_run.run_id, method, layer)
        out[(figures.name, study_run.corpus, study_run.aggregation)] = estimates
    return out


def _comparisons(
    store: Any, models: Sequence[ModelFigures], rows: Sequence[dict]
) -> list[Comparison]:
    """For each fine-tuned model and data set: the best (method, layer) by top-3 against
    last-layer attention (the paper's method) and against the best of any other method."""
    from engine.store.analysis import Side

    out = []
    for m in models:
        if m.role != "fine-tuned":
            continue
        for corpus, run in m.runs.items():
            slices = [
                r for r in rows
                if r["run"] == run and r["population"] == "all" and r[HEADLINE_METRIC] is not None
            ]  # fmt: skip
            if not slices:
                continue
            ordered = sorted(
                slices, key=lambda r: (-r[HEADLINE_METRIC], method_order(r["method"]), r["layer"])
            )
            best = ordered[0]
            runner = next((r for r in ordered if r["method"] != best["method"]), None)
            rivals = [(HEADLINE_METHOD, m.layers)]
            if runner is not None:
                rivals.append((runner["method"], runner["layer"]))
            winner = (best["method"], best["layer"])
            for rival in dict.fromkeys(rivals):
                if rival == winner:
                    continue
                a, b = store.paired_values(Side(run, *winner), Side(run, *rival), HEADLINE_METRIC)
                out.append(
                    Comparison(
                        m.name, corpus, winner, rival,
                        mean_with_ci(a, resamples=RESAMPLES, seed=0),
                        mean_with_ci(b, resamples=RESAMPLES, seed=0),
                        paired_difference(a, b, resamples=RESAMPLES, seed=0),
                        mcnemar(np.asarray(a) > 0.5, np.asarray(b) > 0.5),
                    )
                )  # fmt: skip
    return out


def classification_cis(
    labels: Sequence[bool], preds: Sequence[bool], *, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, Estimate]:
    """Accuracy, F1 and the share flagged as needing an edit, each with a bootstrap 95 % CI.

    F1 is resampled a block of rows at a time (``bootstrap_draws``): memory stays bounded at
    any number of examples.
    """
    gold = np.asarray(labels, dtype=bool)
    pred = np.asarray(preds, dtype=bool)
    n = len(gold)
    if n == 0:
        nan = Estimate(0, math.nan, math.nan, math.nan)
        return {"accuracy": nan, "f1": nan, "flagged": nan}
    correct = gold == pred
    out = {
        "accuracy": mean_with_ci(correct, resamples=resamples, seed=seed),
        "flagged": mean_with_ci(pred, resamples=resamples, seed=seed),
    }
    hit, miss = gold & pred, gold != pred  # true positives; false positives and negatives
    f1s = []
    for draws in bootstrap_draws(n, resamples, seed):
        tp, wrong = hit[draws].sum(axis=1), miss[draws].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1s.append(np.where(2 * tp + wrong > 0, 2 * tp / (2 * tp + wrong), 0.0))
    tp_all, wrong_all = int(hit.sum()), int(miss.sum())
    f1 = 2 * tp_all / (2 * tp_all + wrong_all) if 2 * tp_all + wrong_all else 0.0
    low, high = np.quantile(np.concatenate(f1s), [0.025, 0.975])
    out["f1"] = Estimate(n, f1, float(low), float(high))
    return out


def with_cis(figures: Figures) -> list[dict[str, Any]]:
    """Report rows with ``low``/``high`` of their headline CI (population all): what plots take."""
    rows = []
    for row in figures.rows:
        key = (row["run"], row["method"], row["layer"], row["population"], HEADLINE_METRIC)
        est = figures.cis.get(key)
        if est is not None:
            rows.append(row | {"low": est.low, "high": est.high})
    return rows

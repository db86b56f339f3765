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

from engine.metrics import Estimate, bootstrap_draws, mean_with_ci
from engine.vocabulary import BASELINE_METHOD, HEADLINE_METHOD, HEADLINE_METRIC, is_layered

DELETED = "aesw-deleted"  # minimal pairs from the released deleted.jsonl.gz: trained and tested
SPELLING = "aesw-spelling"  # every row of spelling.jsonl.gz: the transfer test, never trained on
CORPORA = (DELETED, SPELLING)
CORPUS_TITLES = {DELETED: "deleted", SPELLING: "spelling"}
RESAMPLES = 1000
FAITHFULNESS = ("comprehensiveness", "sufficiency")
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
            if headline and row["population"] == "all" and row[FAITHFULNESS[0]] is not None:
                wanted += FAITHFULNESS
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
    return Figures(
        models=list(by_key.values()),
        rows=rows,
        cis=cis,
        corpora=corpora,
        settings=settings,
        steps=list(steps),
        written=datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


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

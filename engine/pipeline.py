"""The multi-step flows the CLI and the TUI's jobs both run: train, evaluate, train then evaluate,
the demo. Each step tells a ``Reporter`` what happens; the caller decides how to show it (the CLI
draws progress bars, a job prints JSON lines). No printing here, and no argument parsing.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.device import DEFAULT_DEVICE
from engine.models import DEFAULT_MODEL, RANDOM_MODEL
from engine.specs import EvalSpec
from engine.train import TrainSpec

if TYPE_CHECKING:
    from engine.evaluate import EvalProgress, EvalResult
    from engine.ingest import IngestSummary
    from engine.train import TrainProgress, TrainResult

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


class Reporter:
    """What a flow says while it runs; this base says nothing (tests, the study's defaults).

    A reporter is a context manager, so one that draws (a live progress bar) can clean up.
    """

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def started(self, title: str) -> None:
        """A step begins (``train minilm on synthetic``)."""

    def train_progress(self, progress: TrainProgress) -> None:
        """One optimizer step done."""

    def eval_progress(self, progress: EvalProgress) -> None:
        """One batch of examples evaluated."""

    def ingested(self, summary: IngestSummary) -> None:
        """A corpus file is in the store."""

    def trained(self, result: TrainResult, merged: bool) -> None:
        """A training run is published (or staged, when not ``merged``)."""

    def evaluated(self, result: EvalResult) -> None:
        """An evaluation run is published (or staged)."""


def train(
    db: Path, spec: TrainSpec, reporter: Reporter | None = None, *, merge: bool = True
) -> TrainResult:
    """Fine-tune, telling ``reporter`` every step; resumes a killed run of the same spec."""
    from engine.train import train as run_train

    reporter = reporter or Reporter()
    reporter.started(f"train {spec.model} on {spec.corpus}")
    result = run_train(db, spec, reporter.train_progress, merge=merge)
    reporter.trained(result, merge)
    return result


def evaluate(
    db: Path, spec: EvalSpec, reporter: Reporter | None = None, *, merge: bool = True
) -> EvalResult:
    """Predict, score and measure one model on one split; resumes a killed run of the same spec.
    Under several processes only rank 0 reports what it evaluated (the whole run)."""
    spec.check()  # before importing torch: a bad option is refused in a blink
    from engine.evaluate import evaluate as run_evaluate

    reporter = reporter or Reporter()
    reporter.started(f"evaluate {spec.model} on {spec.corpus}/{spec.split}")
    result = run_evaluate(db, spec, merge=merge, on_progress=reporter.eval_progress)
    if result.rank == 0:
        reporter.evaluated(result)
    return result


def training_for(spec: EvalSpec, **options: Any) -> TrainSpec:
    """The fine-tuning an evaluation with ``--train-first`` runs: on the evaluated corpus, from
    the evaluated model, at the evaluated max length; ``options`` override the other defaults."""
    return TrainSpec(corpus=spec.corpus, model=spec.model, max_length=spec.max_length, **options)


def train_then_evaluate(
    db: Path,
    spec: EvalSpec,
    training: TrainSpec,
    reporter: Reporter | None = None,
    *,
    merge: bool = True,
) -> tuple[TrainResult, EvalResult]:
    """Fine-tune, then evaluate the best checkpoint with ``spec`` (its model replaced)."""
    spec.check()  # before an hour of training, not after
    trained = train(db, training, reporter, merge=merge)
    evaluated = evaluate(
        db, dataclasses.replace(spec, model=str(trained.checkpoint)), reporter, merge=merge
    )
    return trained, evaluated


@dataclass(frozen=True)
class DemoSpec:
    """The demo: minimal pairs from the embedded corpus and a small model's learning rate, so two
    epochs learn the task on 2 CPU cores; the fine-tuned model beside two baselines."""

    corpus: str = "synthetic"
    epochs: int = 2
    lr: float = 1e-4
    ig_steps: int = 8
    sentences: int = 3000  # when the corpus file has to be regenerated
    seed: int = 2016  # its seed: data/aesw-synthetic.xml is this seed's output
    device: str = DEFAULT_DEVICE  # where it trains and evaluates


@dataclass(frozen=True)
class DemoResult:
    corpus_file: Path
    run_ids: list[str]  # the fine-tuned model's evaluation, then the two baselines'
    seconds: float


def demo_corpus(spec: DemoSpec) -> Path:
    """data/aesw-synthetic.xml from the repository, or the same file regenerated from its seed."""
    shipped = DATA_DIR / "aesw-synthetic.xml"
    if shipped.is_file():
        return shipped
    from engine.synth import write_aesw

    made = Path.cwd() / "aesw-synthetic.xml"
    write_aesw(made, spec.sentences, spec.seed, force=True)  # the shipped file's bytes
    return made


def demo(db: Path, spec: DemoSpec, reporter: Reporter | None = None) -> DemoResult:
    """Ingest the embedded corpus, fine-tune the default model, evaluate it and two baselines."""
    from engine.device import resolve_device
    from engine.ingest import ingest
    from engine.store import Store

    resolve_device(spec.device)  # a device this machine lacks is refused before any work
    reporter = reporter or Reporter()
    started = time.perf_counter()
    corpus_file = demo_corpus(spec)
    reporter.started(f"ingest {corpus_file.name}")
    with Store(db) as store:
        reporter.ingested(ingest(store, corpus_file, corpus=spec.corpus, pairs=True))
    training = TrainSpec(
        corpus=spec.corpus, model=DEFAULT_MODEL, epochs=spec.epochs, lr=spec.lr, device=spec.device
    )
    trained = train(db, training, reporter)
    run_ids = [
        evaluate(
            db,
            EvalSpec(corpus=spec.corpus, model=model, ig_steps=spec.ig_steps, device=spec.device),
            reporter,
        ).run_id
        for model in (str(trained.checkpoint), DEFAULT_MODEL, RANDOM_MODEL)
    ]
    return DemoResult(corpus_file, run_ids, time.perf_counter() - started)

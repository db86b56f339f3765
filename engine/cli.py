"""The ``editlens`` command line: parses arguments, calls ``engine.pipeline``, shows what it says.

Every default comes from the spec dataclasses (``engine.specs``, ``StudySpec``, ``DemoSpec``),
so it is declared once. Data never goes through Rich markup: both consoles have markup off and
styled lines are built as ``Text``. ``main`` is the one place where exceptions become the
one-line error a user sees. Long only because each of its commands declares every option here
(typer's way); the work itself is in ``engine.pipeline`` and the modules it calls.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from engine.corpus import EDIT_KINDS, SPLITS
from engine.device import PRECISIONS
from engine.errors import EditlensError
from engine.pipeline import DemoSpec, Reporter
from engine.specs import EvalSpec, default
from engine.store import DEFAULT_DB, Store
from engine.store.filters import (
    OUTCOMES,
    PREDICTIONS,
    RATIONALE_SIZES,
    SORTS,
    ExampleFilter,
)
from engine.study import StudySpec
from engine.text import inert
from engine.train import SELECT_ON, TrainSpec
from engine.vocabulary import (
    AGGREGATIONS,
    BROWSE_METRICS,
    EXPLAINED_CLASSES,
    HEADLINE_METRIC,
    METHOD_NAMES,
    METRIC_NAMES,
)

if TYPE_CHECKING:
    from engine.evaluate import EvalProgress, EvalResult
    from engine.ingest import IngestSummary
    from engine.train import TrainProgress, TrainResult

app = typer.Typer(
    help="Fine-tune BERT-family models on AESW edits and see where they look.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(markup=False, emoji=False)
err = Console(stderr=True, markup=False, emoji=False)

DbOption = Annotated[
    Path, typer.Option("--db", envvar="EDITLENS_DB", help="The store file.", show_default=True)
]
# Choices as Literal types: typer lists them in --help and refuses anything else.
Kind = Literal[EDIT_KINDS]  # type: ignore[valid-type]
EvalSplit = Literal[(*SPLITS, "all")]  # type: ignore[valid-type]
Split = Literal[SPLITS]  # type: ignore[valid-type]
Metric = Literal[METRIC_NAMES]  # type: ignore[valid-type]
Precision = Literal[PRECISIONS]  # type: ignore[valid-type]
Aggregation = Literal[AGGREGATIONS]  # type: ignore[valid-type]
Explained = Literal[EXPLAINED_CLASSES]  # type: ignore[valid-type]
SelectOn = Literal[SELECT_ON]  # type: ignore[valid-type]
BrowseMetric = Literal[BROWSE_METRICS]  # type: ignore[valid-type]
Method = Literal[METHOD_NAMES]  # type: ignore[valid-type]
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]
Prediction = Literal[tuple(PREDICTIONS)]  # type: ignore[valid-type]
RationaleSize = Literal[tuple(RATIONALE_SIZES)]  # type: ignore[valid-type]
SortKey = Literal[tuple(SORTS)]  # type: ignore[valid-type]


def train_default(name: str) -> Any:
    return default(TrainSpec, name)


def eval_default(name: str) -> Any:
    return default(EvalSpec, name)


def study_default(name: str) -> Any:
    return default(StudySpec, name)


def demo_default(name: str) -> Any:
    return default(DemoSpec, name)


def filter_default(name: str) -> Any:
    return default(ExampleFilter, name)


class ConsoleReporter(Reporter):
    """Progress bars on stderr (stdout stays data), a line per epoch when there is no terminal."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("{task.description}", markup=False, style="bold"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeRemainingColumn(),
            console=err,
            transient=True,  # the summary follows; an error must stay the only line on stderr
            disable=not err.is_terminal,
        )
        self.task: Any = None
        self.title = ""

    def __enter__(self) -> ConsoleReporter:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def started(self, title: str) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.title = title
        self.task = self.bar.add_task(title, total=None, detail="")

    def train_progress(self, p: TrainProgress) -> None:
        detail = f"epoch {p.epoch}/{p.epochs} loss {p.loss:.3f} {p.examples_per_s:.0f} ex/s"
        done = (p.epoch - 1) * p.steps + p.step
        self.bar.update(self.task, completed=done, total=p.epochs * p.steps, detail=detail)
        if self.bar.disable and p.step == p.steps:  # no live bar (a log, CI): a line per epoch
            err.print(f"{self.title}: {detail}")

    def bytes_read(self, done: int, total: int) -> None:
        """Ingest's progress: bytes of the corpus file read."""
        self.bar.update(self.task, completed=done, total=total)

    def eval_progress(self, p: EvalProgress) -> None:
        detail = f"{p.examples_per_s:.1f} ex/s"
        self.bar.update(self.task, completed=p.done, total=p.total, detail=detail)

    def ingested(self, summary: IngestSummary) -> None:
        err.print(
            f"ingested {summary.rows:,} sentences from {summary.path} as corpus {summary.corpus!r}"
        )

    def trained(self, result: TrainResult, merged: bool) -> None:
        resumed = result.resumed_from_epoch
        table = Table(title=f"run {result.run_id}" + (f" (resumed after epoch {resumed})" if resumed else ""))  # fmt: skip
        for column in ("epoch", "train loss", "dev loss", "dev acc", "dev F1", "ex/s"):
            table.add_column(column, justify="right")
        for number, row in enumerate(result.history, start=1):
            table.add_row(
                f"{number}{' *' if number == result.best_epoch else ''}",
                f"{row['train_loss']:.4f}",
                f"{row['dev_loss']:.4f}",
                f"{row['dev_accuracy']:.3f}",
                f"{row['dev_f1']:.3f}",
                f"{row['examples_per_s']:.0f}",
            )
        err.print(table)

    def evaluated(self, result: EvalResult) -> None:
        c = result.classification
        resumed = f", resumed after {result.resumed:,}" if result.resumed else ""
        staged = "" if result.merged else f"; staged in {result.staging}"
        err.print(
            f"run {result.run_id}: {result.examples:,} examples{resumed}; "
            f"accuracy {c.accuracy:.3f}, F1 {c.f1:.3f}{staged}"
        )


def _names(values: list[str] | None) -> tuple[str, ...]:
    """``--x a,b`` and ``--x a --x b`` alike, into a tuple; empty when not given."""
    return tuple(part for value in values or () for part in value.replace(",", " ").split())


def _numbers(option: str, values: list[str] | None) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _names(values))
    except ValueError:
        raise EditlensError(f"{option} {' '.join(values or ())!r}: give numbers like 1,6") from None


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="AESW XML (.xml[.gz]) or released rationale JSONL.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="aesw | rationales (default: from the name).")
    ] = None,
    corpus: Annotated[
        str | None, typer.Option(help="Corpus name (default: the file's stem).")
    ] = None,
    pairs: Annotated[
        bool,
        typer.Option(
            "--pairs",
            help="Add each edited sentence's after-editing twin (label: no edit): minimal pairs.",
        ),
    ] = False,
    split: Annotated[
        Split | None, typer.Option(help="Put every example in this split instead of hashing ids.")
    ] = None,
    kind: Annotated[
        Kind | None, typer.Option(help="Edit kind of a rationale file (default: from the name).")
    ] = None,
    replace_scored: Annotated[
        Literal["stale", "remove"] | None,
        typer.Option(
            help="Change sentences that runs were scored or trained on, keeping those runs "
            "marked stale or removing them (default: refuse)."
        ),
    ] = None,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Read a corpus file into the store (one transaction: all or nothing)."""
    from engine.ingest import ingest as run_ingest

    with Store(db) as store, ConsoleReporter() as reporter:
        reporter.started(f"ingest {path.name}")
        summary = run_ingest(
            store, path, fmt=fmt, corpus=corpus, pairs=pairs, split=split, kind=kind,
            on_progress=reporter.bytes_read, replace_scored=replace_scored or "refuse",
        )  # fmt: skip
    table = Table(title=f"ingested {path} → corpus {summary.corpus!r} in {db}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("sentences written", f"{summary.rows:,}")
    rate = summary.needs_edit / summary.rows if summary.rows else 0.0
    table.add_row("needs edit", f"{summary.needs_edit:,} ({rate:.1%})")
    for name, count in sorted(summary.by_kind.items()):
        table.add_row(f"  kind {name}", f"{count:,}")
    for name, count in sorted(summary.by_split.items()):
        table.add_row(f"  split {name}", f"{count:,}")
    if pairs:
        table.add_row("edited twins added (pairs)", f"{summary.pairs:,}")
    if summary.control:
        table.add_row("with control characters (shown as ␛…)", f"{summary.control:,}")
    if summary.replaced:
        table.add_row("ids already in the corpus, replaced", f"{summary.replaced:,}")
        table.add_row("  of them with changed text or rationale", f"{summary.changed:,}")
    if summary.runs:
        done = "removed" if replace_scored == "remove" else "marked stale"
        table.add_row(f"runs that used changed sentences, {done}", f"{len(summary.runs):,}")
    table.add_row("skipped", f"{summary.skipped.total:,}")
    for reason, ids in summary.skipped.reasons.items():
        table.add_row(f"  {reason}", f"{len(ids):,} (e.g. id {ids[0]})")
    speed = summary.rows / summary.seconds if summary.seconds else 0.0
    table.add_row("time", f"{summary.seconds:.1f} s ({speed:,.0f} sentences/s)")
    out.print(table)


@app.command()
def info(
    db: DbOption = Path(DEFAULT_DB),
    upgrade: Annotated[
        bool, typer.Option("--upgrade", help="Bring an older store to this schema first (writes).")
    ] = False,
) -> None:
    """Show what the store holds."""
    if upgrade and db.exists():
        Store(db).close()  # opened for writing, an older store is upgraded in one transaction
    with Store(db, read_only=True) as store:
        corpora = store.corpora()
        runs = store.runs()
        stale = store.stale_runs()
    if not corpora:
        out.print(f"{db} holds no corpus yet: run `editlens ingest PATH` or `editlens demo`")
        return
    table = Table(title=f"corpora in {db}")
    for column in ("corpus", "examples", "needs edit", "scorable", "splits", "kinds"):
        table.add_column(
            column, justify="left" if column in ("corpus", "splits", "kinds") else "right"
        )
    for c in corpora:
        table.add_row(
            inert(c.name),  # data: control characters shown, never sent
            f"{c.examples:,}",
            f"{c.needs_edit:,}",
            f"{c.scorable:,}",
            " ".join(f"{k}={v:,}" for k, v in sorted(c.by_split.items())),
            " ".join(f"{k}={v:,}" for k, v in sorted(c.by_kind.items())),
        )
    out.print(table)
    if runs:
        table = Table(title=f"runs in {db}")
        table.add_column("run", overflow="fold", ratio=3)  # whole ids: `report --run` takes them
        for column in ("kind", "model", "corpus/split"):
            table.add_column(column, ratio=1)
        for run in runs:
            kind = f"{run.kind} (stale)" if run.id in stale else run.kind  # its text changed
            table.add_row(inert(run.id), kind, inert(run.model), inert(f"{run.corpus}/{run.split}"))
        out.print(table)


@app.command()
def export(
    corpus: Annotated[
        str | None, typer.Option(help="Corpus to export (or --run for a run's examples).")
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(help="Export a run's examples as the TUI's list shows them, with scores."),
    ] = None,
    method: Annotated[Method, typer.Option(help="With --run: method.")] = filter_default("method"),
    layer: Annotated[int, typer.Option(help="With --run: layer (0: none).")] = filter_default(
        "layer"
    ),
    metric: Annotated[
        BrowseMetric, typer.Option(help="With --run: what 'interpretable' means.")
    ] = filter_default("metric"),
    outcome: Annotated[
        Outcome, typer.Option(help="With --run: interpretable (yes), not (no), unscorable.")
    ] = filter_default("outcome"),
    prediction: Annotated[
        Prediction, typer.Option(help="With --run: right, wrong, tp, fp, fn, tn.")
    ] = filter_default("prediction"),
    kind: Annotated[Kind | None, typer.Option(help="With --run: edit kind.")] = filter_default(
        "kind"
    ),
    rationale: Annotated[
        RationaleSize, typer.Option(help="With --run: rationale size.")
    ] = filter_default("rationale"),
    search: Annotated[
        str, typer.Option(help="With --run: text or id contains this.")
    ] = filter_default("search"),
    sort: Annotated[SortKey, typer.Option(help="With --run: order.")] = filter_default("sort"),
    descending: Annotated[
        bool, typer.Option("--descending", help="With --run: reverse the order.")
    ] = filter_default("descending"),
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl | csv | parquet (default: from --out, else jsonl)."),
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: stdout).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Write one record per example: id, split, text, label, kind, words, rationale; with
    --run, the examples the TUI's list shows for that filter, in its order, with their scores."""
    from engine.export import format_from_path, write_records

    if (corpus is None) == (run is None):
        raise typer.BadParameter("give --corpus or --run (one of them)")
    fmt = fmt or (format_from_path(out_path) if out_path else None) or "jsonl"
    with Store(db, read_only=True) as store:
        if run is not None:
            store.get_run(run)  # an unknown run is a one-line error naming it
            chosen = ExampleFilter(
                run=run, method=method, layer=layer, metric=metric, outcome=outcome,
                prediction=prediction, kind=kind, rationale=rationale, search=search, sort=sort,
                descending=descending,
            )  # fmt: skip
            batches = store.filtered_batches(chosen)
        elif not store.has_corpus(corpus):
            raise EditlensError(f"corpus {corpus!r} is not in {db}; see `editlens info`")
        else:
            batches = store.export_batches(corpus)
        rows = write_records(batches, fmt, out_path, force=force, protected=(db,))
    if out_path:
        err.print(f"wrote {rows:,} examples to {out_path}")


@app.command()
def staging(
    clean: Annotated[
        bool, typer.Option("--clean", help="Remove the idle ones (their unfinished runs are lost).")
    ] = False,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """List the staging files of unfinished evaluations beside the store (rerunning the same
    evaluation resumes from one); --clean removes those no running job holds."""
    from engine.store import remove_staged, staged_files

    leftovers = staged_files(db)
    for staged in leftovers:
        state = "in use by a running job" if staged.in_use else "idle"
        if clean and not staged.in_use:
            remove_staged(staged)
            state = "removed"
        out.print(Text(f"{inert(str(staged.path))}  {staged.bytes:,} bytes  {state}"))
    if not leftovers:
        err.print(f"no staging files beside {inert(str(db))}")


@app.command()
def synth(
    out_path: Annotated[Path, typer.Option("--out", help="AESW XML file to write.")],
    sentences: Annotated[int, typer.Option(min=1, help="How many sentences.")] = demo_default(
        "sentences"
    ),
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same file.")] = demo_default(
        "seed"
    ),
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Generate a synthetic AESW-format corpus (how data/aesw-synthetic.xml was made)."""
    from engine.synth import write_aesw

    write_aesw(out_path, sentences, seed, force=force)
    err.print(f"wrote {sentences:,} synthetic sentences to {out_path}")


@app.command()
def train(
    corpus: Annotated[str, typer.Option(help="Corpus to fine-tune on (its train split).")],
    model: Annotated[
        str, typer.Option(help="Registry name, Hugging Face name or directory.")
    ] = train_default("model"),
    epochs: Annotated[
        int, typer.Option(min=1, help="Most epochs; early stopping may end sooner.")
    ] = train_default("epochs"),
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = train_default("lr"),
    batch_size: Annotated[int, typer.Option(min=1, help="Sentences per batch.")] = train_default(
        "batch_size"
    ),
    max_length: Annotated[
        int, typer.Option(min=8, help="Subword tokens per sentence, at most.")
    ] = train_default("max_length"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = train_default("seed"),
    patience: Annotated[
        int, typer.Option(min=0, help="Epochs without a better dev loss before stopping.")
    ] = train_default("patience"),
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use only the first N training examples.")
    ] = train_default("limit"),
    device: Annotated[
        str, typer.Option(help="auto | cpu | cuda | cuda:N | mps; auto takes the GPU if any.")
    ] = train_default("device"),
    precision: Annotated[
        Precision, typer.Option(help="Compute precision (bf16/fp16: autocast; fp16 on GPUs).")
    ] = train_default("precision"),
    checkpoint_every: Annotated[
        int, typer.Option(min=0, help="Optimizer steps between checkpoints (0: epoch ends only).")
    ] = train_default("checkpoint_every"),
    pair_batches: Annotated[
        bool, typer.Option(help="Keep a sentence and its edited twin in one training batch.")
    ] = train_default("pair_batches"),
    select: Annotated[
        SelectOn, typer.Option(help="Dev figure that picks the epoch kept as the checkpoint.")
    ] = train_default("select"),
    keep_epochs: Annotated[
        bool, typer.Option(help="Keep every epoch's model in <out>/epoch-N/ as well.")
    ] = train_default("keep_epochs"),
    out_dir: Annotated[Path | None, typer.Option("--out", help="Checkpoint directory.")] = None,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Fine-tune a classifier; a killed run resumes from its last checkpoint when rerun.

    Under `torchrun --nproc_per_node N` or `accelerate launch --multi_gpu --num_processes N`
    it trains data-parallel; --batch-size stays the global batch.
    """
    from engine import pipeline

    spec = TrainSpec(
        corpus=corpus, model=model, epochs=epochs, lr=lr, batch_size=batch_size,
        max_length=max_length, seed=seed, patience=patience, limit=limit, out=out_dir,
        device=device, precision=precision, checkpoint_every=checkpoint_every,
        pair_batches=pair_batches, select=select, keep_epochs=keep_epochs,
    )  # fmt: skip
    with ConsoleReporter() as reporter:
        result = pipeline.train(db, spec, reporter)
    out.print(f"checkpoint: {result.checkpoint}")


@app.command()
def evaluate(
    corpus: Annotated[str, typer.Option(help="Corpus to evaluate on.")],
    model: Annotated[
        str, typer.Option(help="Registry name, checkpoint directory or Hugging Face name.")
    ] = eval_default("model"),
    split: Annotated[EvalSplit, typer.Option(help="Split to evaluate.")] = eval_default("split"),
    methods: Annotated[
        list[str] | None,
        typer.Option(help="Methods, comma-separated or repeated (default: all)."),
    ] = None,
    layers: Annotated[
        list[str] | None,
        typer.Option(help="Layers to keep, comma-separated or repeated (default: all)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate only the first N examples.")
    ] = eval_default("limit"),
    batch_size: Annotated[int, typer.Option(min=1, help="Sentences per batch.")] = eval_default(
        "batch_size"
    ),
    max_length: Annotated[
        int, typer.Option(min=8, help="Subword tokens per sentence, at most.")
    ] = eval_default("max_length"),
    ig_steps: Annotated[
        int, typer.Option(min=1, help="Integrated-gradients steps.")
    ] = eval_default("ig_steps"),
    faithfulness: Annotated[
        bool, typer.Option(help="Comprehensiveness and sufficiency at the last layer.")
    ] = eval_default("faithfulness"),
    seed: Annotated[int, typer.Option(help="Seed of the random ranking.")] = eval_default("seed"),
    aggregation: Annotated[
        Aggregation, typer.Option(help="A word's score from its subwords' scores.")
    ] = eval_default("aggregation"),
    explain: Annotated[
        Explained,
        typer.Option(
            help="Class gradient and perturbation methods explain: the edit or the prediction."
        ),
    ] = eval_default("explain"),
    label: Annotated[
        str | None, typer.Option(help="Name to show this model under.")
    ] = eval_default("label"),
    device: Annotated[
        str, typer.Option(help="auto | cpu | cuda | cuda:N | mps; auto takes the GPU if any.")
    ] = eval_default("device"),
    precision: Annotated[
        Precision, typer.Option(help="Compute precision; scores are stored as float32.")
    ] = eval_default("precision"),
    train_first: Annotated[
        bool, typer.Option("--train-first", help="Fine-tune the model on the corpus first.")
    ] = False,
    epochs: Annotated[
        int, typer.Option(min=1, help="With --train-first: most epochs.")
    ] = train_default("epochs"),
    lr: Annotated[
        float, typer.Option(help="With --train-first: peak learning rate.")
    ] = train_default("lr"),
    train_batch_size: Annotated[
        int, typer.Option(min=1, help="With --train-first: sentences per training batch.")
    ] = train_default("batch_size"),
    train_seed: Annotated[
        int, typer.Option(help="With --train-first: the fine-tuning seed.")
    ] = train_default("seed"),
    merge: Annotated[
        bool, typer.Option(help="Publish into --db at the end (--no-merge: leave it staged).")
    ] = True,
    events: Annotated[
        bool, typer.Option("--events", help="Report progress as JSON lines on stdout.")
    ] = False,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Predict, extract word scores and score them against the human rationales."""
    from engine import pipeline
    from engine.report import render, report_rows

    spec = EvalSpec(
        corpus=corpus, model=model, split=split,
        methods=_names(methods) if methods is not None else eval_default("methods"),
        layers=_numbers("--layers", layers), limit=limit, batch_size=batch_size,
        max_length=max_length, ig_steps=ig_steps, faithfulness=faithfulness, seed=seed,
        aggregation=aggregation, explain=explain, label=label, device=device, precision=precision,
    )  # fmt: skip
    if events:
        from engine.jobs import EventReporter

        reporter: Any = EventReporter(lambda line: typer.echo(line))
    else:
        reporter = ConsoleReporter()
    with reporter:
        if train_first:
            training = pipeline.training_for(
                spec, epochs=epochs, lr=lr, batch_size=train_batch_size, seed=train_seed,
                device=device, precision=precision,
            )  # fmt: skip
            _, result = pipeline.train_then_evaluate(db, spec, training, reporter, merge=merge)
        else:
            result = pipeline.evaluate(db, spec, reporter, merge=merge)
    if not events and merge and result.rank == 0:  # the other ranks end before the publish
        with Store(db, read_only=True) as store:
            out.print(render(store, report_rows(store, [result.run_id])))


@app.command()
def report(
    run: Annotated[
        list[str] | None, typer.Option(help="Run id (repeatable; default: every evaluation).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as a JSON list.")
    ] = False,
    plot: Annotated[
        bool, typer.Option("--plot", help="Plot top-3 match by layer in the terminal.")
    ] = False,
    metric: Annotated[
        Metric, typer.Option(help="Metric of the tables and the plot.")
    ] = HEADLINE_METRIC,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """The study's tables for the runs in the store."""
    import json

    from engine.report import render, report_rows

    with Store(db, read_only=True) as store:
        rows = report_rows(store, run)
        if as_json:
            typer.echo(json.dumps(rows, indent=1))
            return
        if not rows:
            out.print(f"{db} holds no evaluation yet: run `editlens evaluate` or `editlens demo`")
            return
        out.print(render(store, rows, metric))
        if plot:
            from engine.plots import terminal_layer_plot

            terminal_layer_plot(rows, metric)


@app.command()
def show(
    example: Annotated[str, typer.Argument(help="Example id.")],
    run: Annotated[
        str | None, typer.Option(help="Run id (default: the latest evaluation).")
    ] = None,
    method: Annotated[str, typer.Option(help="Rationale method.")] = "attention",
    layer: Annotated[int | None, typer.Option(help="Layer (default: the last).")] = None,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Print one sentence with its words coloured by score and the human rationale underlined."""
    from engine.highlight import legend, sentence

    with Store(db, read_only=True) as store:
        runs = store.runs(kind="evaluate")
        if not runs:
            raise EditlensError(
                f"{db} holds no evaluation yet: run `editlens evaluate` or `editlens demo`"
            )
        chosen = store.get_run(run) if run else runs[-1]
        detail = store.example_detail(chosen.id, example)
    if detail is None:
        raise EditlensError(
            f"example {example!r} was not evaluated in run {chosen.id}; see `editlens export`"
        )
    layer = chosen.layers if layer is None else layer
    rows = [
        r
        for r in detail["scores"].to_pylist()
        if r["method"] == method and r["layer"] in (layer, 0)
    ]
    if not rows:
        raise EditlensError(f"run {chosen.id} has no {method} scores at layer {layer}")
    scores = rows[0]["scores"]
    out.print(
        Text.assemble(
            (inert(example), "bold"),  # data: control characters shown, never sent
            f" · {inert(chosen.model)} · {method} layer {rows[0]['layer']} · "
            f"predicted {'needs edit' if detail['pred'] else 'no edit'} (p={detail['prob']:.2f}), "
            f"gold {'needs edit' if detail['label'] else 'no edit'} · kind {detail['kind']}",
        )
    )
    out.print(sentence(detail["words"], detail["rationale"], scores, detail["seen_words"]))
    out.print(legend(min(scores, default=None), max(scores, default=None)))


@app.command()
def study(
    data: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the released rationale files (deleted.jsonl.gz, spelling.jsonl.gz); "
            "required unless ../shared/aesw-rationales sits beside the repository."
        ),
    ] = None,
    models: Annotated[
        list[str], typer.Option(help="Models to fine-tune, comma-separated or repeated.")
    ] = list(study_default("models")),
    baselines: Annotated[
        list[str],
        typer.Option(help="Models evaluated without fine-tuning, comma-separated ('' for none)."),
    ] = list(study_default("baselines")),
    floor: Annotated[
        str,
        typer.Option(
            help="Random-weight model evaluated with every method as the floor ('' for none)."
        ),
    ] = study_default("floor"),
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where results.md and the plots go.")
    ] = study_default("out"),
    epochs: Annotated[int, typer.Option(min=1, help="Fine-tuning epochs.")] = study_default(
        "epochs"
    ),
    lr: Annotated[float, typer.Option(help="Peak learning rate of fine-tuning.")] = study_default(
        "lr"
    ),
    train_limit: Annotated[
        int, typer.Option(min=0, help="Fine-tune on the first N training examples (0: all).")
    ] = study_default("train_limit"),
    seeds: Annotated[
        list[str], typer.Option(help="Fine-tuning seeds, comma-separated or repeated.")
    ] = [str(s) for s in study_default("seeds")],
    ig_steps: Annotated[
        int, typer.Option(min=1, help="Integrated-gradients steps.")
    ] = study_default("ig_steps"),
    limit: Annotated[
        int | None, typer.Option(min=1, help="Cap every training and evaluation set (a dry run).")
    ] = study_default("limit"),
    device: Annotated[
        str, typer.Option(help="auto | cpu | cuda | cuda:N | mps; auto takes the GPU if any.")
    ] = study_default("device"),
    readme: Annotated[
        Path | None,
        typer.Option(help="File whose results markers to rewrite (default: ./README.md if any)."),
    ] = None,
    no_readme: Annotated[
        bool, typer.Option("--no-readme", help="Write only <out>/results.md.")
    ] = False,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Reproduce the study on the released rationales: ingest, fine-tune, evaluate, results page."""
    from engine import pipeline
    from engine.study import default_data_dir, run_study

    data = data or default_data_dir()
    if data is None:
        raise EditlensError(
            "pass --data DIR: the folder of the released rationale files "
            "(deleted.jsonl.gz, spelling.jsonl.gz)"
        )
    if readme is None and not no_readme and Path("README.md").is_file():
        readme = Path("README.md")
    spec = StudySpec(
        data=data, models=_names(models), baselines=_names(baselines), floor=floor or None,
        out=out_dir,
        epochs=epochs, lr=lr, seeds=_numbers("--seeds", seeds),
        train_limit=train_limit or None, ig_steps=ig_steps, limit=limit, device=device,
        readme=None if no_readme else readme,
    )  # fmt: skip
    with ConsoleReporter() as reporter:
        result = run_study(
            db,
            spec,
            train=lambda path, s: pipeline.train(path, s, reporter),
            evaluate=lambda path, s: pipeline.evaluate(path, s, reporter),
            on_step=lambda step: err.print(
                Text.assemble(
                    (step.name, "bold"),
                    f": {step.seconds:.0f} s" + (" (reused)" if step.reused else ""),
                )
            ),
        )
    err.print(f"study finished in {result.seconds:.0f} s; results: {result.page}")
    if spec.readme is not None:
        err.print(f"rewrote the results section of {spec.readme}")


@app.command()
def demo(
    tui_after: Annotated[
        bool, typer.Option("--tui/--no-tui", help="Open the TUI at the end (when on a terminal).")
    ] = True,
    epochs: Annotated[int, typer.Option(min=1, help="Fine-tuning epochs.")] = demo_default(
        "epochs"
    ),
    device: Annotated[
        str, typer.Option(help="auto | cpu | cuda | cuda:N | mps; auto takes the GPU if any.")
    ] = demo_default("device"),
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """The whole loop on the embedded corpus: ingest, fine-tune, evaluate with baselines, report."""
    from engine import pipeline
    from engine.report import render, report_rows

    with ConsoleReporter() as reporter:
        result = pipeline.demo(db, DemoSpec(epochs=epochs, device=device), reporter)
    with Store(db, read_only=True) as store:
        out.print(render(store, report_rows(store, result.run_ids)))
    err.print(f"demo finished in {result.seconds:.0f} s; store: {db}")
    if tui_after and sys.stdout.isatty() and sys.stdin.isatty():
        tui(db)
    else:
        err.print(f"explore it: editlens tui --db {db}")


@app.command()
def tui(
    db: DbOption = Path(DEFAULT_DB),
    write_root: Annotated[
        Path | None,
        typer.Option(hidden=True, help="Write files only inside this folder (set by serve)."),
    ] = None,
) -> None:
    """Explore runs and examples in the terminal (works over SSH, 80x24 and up)."""
    from tui.app import run as run_tui  # the one place the CLI reaches the TUI: lazily

    run_tui(db, write_root)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind (localhost by default: tunnel over SSH).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Serve the TUI in a browser (textual-serve)."""
    from tui.serve import serve as run_serve  # lazily, as in `tui`

    if not _loopback(host):
        err.print(
            Text(
                f"warning: serving on {inert(host)}: anyone who can reach this address can read "
                "the store and start jobs; bind 127.0.0.1 and tunnel over SSH instead",
                style="bold red",
            )
        )
    run_serve(db, host=host, port=port)


def _loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that resolves elsewhere, or nothing valid: warn


INTERRUPTED = "interrupted: nothing half-written was kept; rerun the command to resume"


def user_message(error: BaseException) -> str | None:
    """The one line a user sees for an exception the engine can meet; None for a bug."""
    if isinstance(error, EditlensError):
        return str(error)
    if isinstance(error, OSError):
        where = error.filename if error.filename is not None else None
        reason = error.strerror or str(error)
        return f"{where}: {reason}" if where else reason
    families = [ValueError]  # validation in the engine and the libraries it calls
    for module, name in (("duckdb", "Error"), ("safetensors", "SafetensorError")):
        loaded = sys.modules.get(module)  # only loaded when something used it
        if loaded is not None and hasattr(loaded, name):
            families.append(getattr(loaded, name))
    if isinstance(error, tuple(families)):
        lines = [line for line in str(error).splitlines() if line.strip()]
        return lines[0] if lines else type(error).__name__
    return None


def fail(message: str, code: int) -> None:
    # inert: a path or id in the message may carry ESC or a newline; it stays one visible line
    err.print(Text.assemble(("error:", "bold red"), " ", inert(message)), soft_wrap=True)
    sys.exit(code)


# typer bundles its own click (or uses the installed one): find its exception classes through
# the one it exports rather than importing a private module.
UsageError: type[Exception] = typer.BadParameter.__base__
ClickException: type[Exception] = UsageError.__base__


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes end as one line on stderr, never a traceback.

    Exit codes: 0 done, 1 failed, 2 a usage error (click's convention), 130 interrupted.
    ``EDITLENS_DEBUG=1`` lets the original exception through, traceback and all.
    """
    try:
        code = app(args=argv, prog_name="editlens", standalone_mode=False)
    except ClickException as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # bare `editlens`: the help
            error.show()  # type: ignore[attr-defined]
            sys.exit(2)
        context = getattr(error, "ctx", None)
        where = context.command_path if context is not None else "editlens"
        message = error.format_message()  # type: ignore[attr-defined]
        fail(f"{message} (see `{where} --help`)", error.exit_code)  # type: ignore[attr-defined]
    except Exception as error:
        message = user_message(error)
        if message is None or os.environ.get("EDITLENS_DEBUG"):
            raise
        fail(message, 1)
    if code == 130:  # typer turns Ctrl-C into this exit code, silently
        err.print(INTERRUPTED)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()

"""The ``editlens`` command line: parses arguments and calls the engine, nothing else."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.errors import EditlensError
from engine.report import render, report_rows
from engine.store import DEFAULT_DB, Store

if TYPE_CHECKING:
    from engine.evaluate import EvalProgress, EvalResult, EvalSpec
    from engine.train import TrainProgress, TrainResult, TrainSpec

app = typer.Typer(
    help="Fine-tune BERT-family models on AESW edits and see where they look.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    Path, typer.Option("--db", envvar="EDITLENS_DB", help="The store file.", show_default=True)
]


def progress_bar() -> Progress:
    """The one progress-bar layout every long command uses (on stderr, so stdout stays data)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,  # the summary follows; an error must stay the only line on stderr
        disable=not err.is_terminal,
    )


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
        str | None, typer.Option(help="Put every example in this split instead of hashing ids.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Edit kind of a rationale file (default: from the name).")
    ] = None,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Read a corpus file into the store (one transaction: all or nothing)."""
    from engine.ingest import ingest as run_ingest

    with Store(db) as store, progress_bar() as bar:
        task = bar.add_task(f"ingest {path.name}", total=None, detail="")
        summary = run_ingest(
            store,
            path,
            fmt=fmt,
            corpus=corpus,
            pairs=pairs,
            split=split,
            kind=kind,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        bar.update(task, completed=1, total=1, detail=f"{summary.rows:,} sentences")
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
    table.add_row("skipped", f"{summary.skipped.total:,}")
    for reason, ids in summary.skipped.reasons.items():
        table.add_row(f"  {reason}", f"{len(ids):,} (e.g. id {ids[0]})")
    speed = summary.rows / summary.seconds if summary.seconds else 0.0
    table.add_row("time", f"{summary.seconds:.1f} s ({speed:,.0f} sentences/s)")
    out.print(table)


@app.command()
def info(db: DbOption = Path(DEFAULT_DB)) -> None:
    """Show what the store holds."""
    with Store(db, read_only=True) as store:
        corpora = store.corpora()
        runs = store.runs()
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
            c.name,
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
            table.add_row(run.id, run.kind, run.model, f"{run.corpus}/{run.split}")
        out.print(table)


@app.command()
def export(
    corpus: Annotated[str, typer.Option(help="Corpus to export.")],
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
    """Write one record per example: id, split, text, label, kind, words, rationale."""
    from engine.export import format_from_path, write_records

    fmt = fmt or (format_from_path(out_path) if out_path else None) or "jsonl"
    with Store(db, read_only=True) as store:
        if not store.has_corpus(corpus):
            raise EditlensError(f"corpus {corpus!r} is not in {db}; see `editlens info`")
        rows = write_records(
            store.export_batches(corpus), fmt, out_path, force=force, protected=(db,)
        )
    if out_path:
        err.print(f"wrote {rows:,} examples to {out_path}")


@app.command()
def synth(
    out_path: Annotated[Path, typer.Option("--out", help="AESW XML file to write.")],
    sentences: Annotated[int, typer.Option(help="How many sentences.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same file.")] = 2016,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Generate a synthetic AESW-format corpus (how data/aesw-synthetic.xml was made)."""
    from engine.synth import write_aesw

    write_aesw(out_path, sentences, seed, force=force)
    err.print(f"wrote {sentences:,} synthetic sentences to {out_path}")


def _names(value: str | None) -> tuple[str, ...]:
    """``a,b`` or ``a b`` into a tuple; empty when not given."""
    return tuple(part for part in (value or "").replace(",", " ").split() if part)


def _layers(value: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _names(value))
    except ValueError:
        raise EditlensError(f"--layers {value!r}: give layer numbers like 1,6") from None


@app.command()
def train(
    corpus: Annotated[str, typer.Option(help="Corpus to fine-tune on (its train split).")],
    model: Annotated[
        str, typer.Option(help="Registry name, Hugging Face name or directory.")
    ] = "minilm",
    epochs: Annotated[int, typer.Option(help="Most epochs; early stopping may end sooner.")] = 3,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 5e-5,
    batch_size: Annotated[int, typer.Option(help="Sentences per batch.")] = 16,
    max_length: Annotated[int, typer.Option(help="Subword tokens per sentence, at most.")] = 128,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 13,
    patience: Annotated[
        int, typer.Option(help="Epochs without a better dev loss before stopping.")
    ] = 2,
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N training examples.")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Checkpoint directory.")] = None,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Fine-tune a classifier; Ctrl-C and rerun to resume from the last finished epoch."""
    from engine.train import TrainSpec

    spec = TrainSpec(
        corpus=corpus, model=model, epochs=epochs, lr=lr, batch_size=batch_size,
        max_length=max_length, seed=seed, patience=patience, limit=limit, out=out_dir,
    )  # fmt: skip
    result = run_training(db, spec)
    out.print(f"checkpoint: {result.checkpoint}")


def run_training(db: Path, spec: TrainSpec, *, merge: bool = True) -> TrainResult:
    """Train with a progress bar showing loss and examples/s; prints the epoch history."""
    from engine.train import train as run_train

    with progress_bar() as bar:
        task = bar.add_task(f"train {spec.model} on {spec.corpus}", total=None, detail="")

        def show(p: TrainProgress) -> None:
            detail = f"epoch {p.epoch}/{p.epochs} loss {p.loss:.3f} {p.examples_per_s:.0f} ex/s"
            bar.update(
                task,
                completed=(p.epoch - 1) * p.steps + p.step,
                total=p.epochs * p.steps,
                detail=detail,
            )
            if bar.disable and p.step == p.steps:  # no live bar (a log, CI): a line per epoch
                err.print(f"train {spec.model} on {spec.corpus}: {detail}")

        result = run_train(db, spec, on_progress=show, merge=merge)
    table = Table(
        title=f"run {result.run_id}"
        + (
            f" (resumed after epoch {result.resumed_from_epoch})"
            if result.resumed_from_epoch
            else ""
        )
    )
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
    return result


@app.command()
def evaluate(
    corpus: Annotated[str, typer.Option(help="Corpus to evaluate on.")],
    model: Annotated[
        str, typer.Option(help="Registry name, checkpoint directory or Hugging Face name.")
    ] = "minilm",
    split: Annotated[str, typer.Option(help="train | dev | test | all.")] = "test",
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated methods (default: all).")
    ] = None,
    layers: Annotated[
        str | None, typer.Option(help="Comma-separated layers to keep (default: all).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N examples.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sentences per batch.")] = 32,
    max_length: Annotated[int, typer.Option(help="Subword tokens per sentence, at most.")] = 128,
    ig_steps: Annotated[int, typer.Option(help="Integrated-gradients steps.")] = 16,
    faithfulness: Annotated[
        bool, typer.Option(help="Comprehensiveness and sufficiency at the last layer.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the random ranking.")] = 0,
    label: Annotated[str | None, typer.Option(help="Name to show this model under.")] = None,
    train_first: Annotated[
        bool, typer.Option("--train-first", help="Fine-tune the model on the corpus first.")
    ] = False,
    epochs: Annotated[int, typer.Option(help="Epochs, with --train-first.")] = 3,
    merge: Annotated[
        bool, typer.Option(help="Publish into --db at the end (--no-merge: leave it staged).")
    ] = True,
    events: Annotated[
        bool, typer.Option("--events", help="Report progress as JSON lines on stdout.")
    ] = False,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Predict, extract word scores and score them against the human rationales."""
    from engine.evaluate import ALL_METHODS, EvalSpec
    from engine.jobs import event_line
    from engine.train import TrainSpec

    if train_first:
        trained = run_training(
            db, TrainSpec(corpus=corpus, model=model, epochs=epochs), merge=merge
        )
        if events and not merge:
            typer.echo(event_line("staged", run=trained.run_id, staging=str(trained.staging)))
        model = str(trained.checkpoint)
    spec = EvalSpec(
        corpus=corpus, model=model, split=split, methods=_names(methods) or ALL_METHODS,
        layers=_layers(layers), limit=limit, batch_size=batch_size, max_length=max_length,
        ig_steps=ig_steps, faithfulness=faithfulness, seed=seed, label=label,
    )  # fmt: skip
    if events:
        result = run_evaluation(
            db,
            spec,
            merge=merge,
            report=lambda p: typer.echo(
                event_line("progress", done=p.done, total=p.total), nl=True
            ),
        )
        typer.echo(
            event_line(
                "staged" if not merge else "done", run=result.run_id, staging=str(result.staging)
            )
        )
        return
    result = run_evaluation(db, spec, merge=merge)
    with Store(db, read_only=True) as store:
        out.print(render(store, report_rows(store, [result.run_id])))


def run_evaluation(
    db: Path,
    spec: EvalSpec,
    *,
    merge: bool = True,
    report: Callable[[EvalProgress], None] | None = None,
) -> EvalResult:
    """Evaluate with a progress bar (or the given reporter); says how it went on stderr."""
    from engine.evaluate import evaluate as run_evaluate

    with progress_bar() as bar:
        task = bar.add_task(
            f"evaluate {spec.model} on {spec.corpus}/{spec.split}", total=None, detail=""
        )

        def show(p: EvalProgress) -> None:
            bar.update(task, completed=p.done, total=p.total, detail=f"{p.examples_per_s:.1f} ex/s")
            if report:
                report(p)

        result = run_evaluate(db, spec, merge=merge, on_progress=show)
    c = result.classification
    resumed = f", resumed after {result.resumed:,}" if result.resumed else ""
    err.print(
        f"run {result.run_id}: {result.examples:,} examples{resumed}; "
        f"accuracy {c.accuracy:.3f}, F1 {c.f1:.3f}"
        + ("" if merge else f"; staged in {result.staging}")
    )
    return result


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
    metric: Annotated[str, typer.Option(help="Metric of the tables and the plot.")] = "top3",
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """The study's tables for the runs in the store."""
    import json

    from engine.store import OUTCOME_METRICS

    if metric not in OUTCOME_METRICS:
        raise EditlensError(f"unknown metric {metric!r}; use one of {', '.join(OUTCOME_METRICS)}")
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
        f"[bold]{example}[/] · {chosen.model} · {method} layer {rows[0]['layer']} · "
        f"predicted {'needs edit' if detail['pred'] else 'no edit'} (p={detail['prob']:.2f}), "
        f"gold {'needs edit' if detail['label'] else 'no edit'} · kind {detail['kind']}"
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
        str | None, typer.Option(help="Models to fine-tune, comma-separated.")
    ] = "minilm,minilm-random",
    baseline: Annotated[
        str, typer.Option(help="Model evaluated without fine-tuning ('' for none).")
    ] = "minilm",
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where results.md and the plots go.")
    ] = Path("data/study"),
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs.")] = 2,
    lr: Annotated[float, typer.Option(help="Peak learning rate of fine-tuning.")] = 1e-4,
    train_limit: Annotated[
        int, typer.Option(help="Fine-tune on the first N training examples (0: all).")
    ] = 4000,
    seeds: Annotated[str, typer.Option(help="Fine-tuning seeds, comma-separated.")] = "13",
    ig_steps: Annotated[int, typer.Option(help="Integrated-gradients steps.")] = 4,
    limit: Annotated[
        int | None, typer.Option(help="Cap every training and evaluation set (a dry run).")
    ] = None,
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
    from engine.study import StudySpec, default_data_dir, run_study

    data = data or default_data_dir()
    if data is None:
        raise EditlensError(
            "pass --data DIR: the folder of the released rationale files "
            "(deleted.jsonl.gz, spelling.jsonl.gz)"
        )
    if readme is None and not no_readme and Path("README.md").is_file():
        readme = Path("README.md")
    spec = StudySpec(
        data=data, models=_names(models), baseline=baseline or None, out=out_dir,
        epochs=epochs, lr=lr, seeds=tuple(int(s) for s in _names(seeds)),
        train_limit=train_limit or None, ig_steps=ig_steps, limit=limit,
        readme=None if no_readme else readme,
    )  # fmt: skip
    result = run_study(
        db,
        spec,
        train=lambda path, s: run_training(path, s),
        evaluate=lambda path, s: run_evaluation(path, s),
        on_step=lambda step: err.print(
            f"[bold]{step.name}[/]: {step.seconds:.0f} s" + (" (reused)" if step.reused else "")
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
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs.")] = 2,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """The whole loop on the embedded corpus: ingest, fine-tune, evaluate with baselines, report."""
    import time

    from engine.evaluate import ALL_METHODS, EvalSpec
    from engine.ingest import ingest as run_ingest
    from engine.models import DEFAULT_MODEL, RANDOM_MODEL
    from engine.train import TrainSpec

    started = time.perf_counter()
    corpus_file = demo_corpus()
    with Store(db) as store:
        summary = run_ingest(store, corpus_file, corpus=DEMO_CORPUS, pairs=True)
    err.print(f"ingested {summary.rows:,} sentences from {corpus_file} as corpus {DEMO_CORPUS!r}")
    # Minimal pairs and a small model's learning rate: on 2 cores, two epochs learn the task.
    trained = run_training(
        db, TrainSpec(corpus=DEMO_CORPUS, model=DEFAULT_MODEL, epochs=epochs, lr=DEMO_LR)
    )
    run_ids = []
    for model in (str(trained.checkpoint), DEFAULT_MODEL, RANDOM_MODEL):
        spec = EvalSpec(
            corpus=DEMO_CORPUS,
            model=model,
            split="test",
            methods=ALL_METHODS,
            ig_steps=DEMO_IG_STEPS,
        )
        run_ids.append(run_evaluation(db, spec).run_id)
    with Store(db, read_only=True) as store:
        out.print(render(store, report_rows(store, run_ids)))
    err.print(f"demo finished in {time.perf_counter() - started:.0f} s; store: {db}")
    if tui_after and sys.stdout.isatty() and sys.stdin.isatty():
        from tui.app import run as run_tui

        run_tui(db)
    else:
        err.print(f"explore it: editlens tui --db {db}")


DEMO_CORPUS = "synthetic"
DEMO_LR = 1e-4
DEMO_IG_STEPS = 8


def demo_corpus() -> Path:
    """data/aesw-synthetic.xml from the repository, or the same file regenerated from its seed."""
    shipped = Path(__file__).resolve().parents[1] / "data" / "aesw-synthetic.xml"
    if shipped.is_file():
        return shipped
    from engine.synth import write_aesw

    made = Path.cwd() / "aesw-synthetic.xml"
    write_aesw(made, 3000, 2016, force=True)  # the same bytes as the shipped file
    return made


@app.command()
def tui(db: DbOption = Path(DEFAULT_DB)) -> None:
    """Explore runs and examples in the terminal (works over SSH, 80x24 and up)."""
    from tui.app import run as run_tui

    run_tui(db)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind (localhost by default: tunnel over SSH).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Serve the TUI in a browser (textual-serve)."""
    from tui.serve import serve as run_serve

    run_serve(db, host=host, port=port)


def main() -> None:
    """Entry point: user mistakes end as one line on stderr, never a traceback."""
    try:
        app()
    except EditlensError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except BrokenPipeError:  # `editlens export | head`: the reader has what it wanted
        sys.stderr.close()
    except KeyboardInterrupt:
        err.print("interrupted: nothing half-written was kept; rerun the command to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()

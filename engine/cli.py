"""The ``editlens`` command line: parses arguments and calls the engine, nothing else."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.errors import EditlensError
from engine.store import DEFAULT_DB, Store

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
        bool, typer.Option("--pairs", help="Add each deleted row's edited twin (label: no edit).")
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
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Write one record per example: id, split, text, label, kind, words, rationale."""
    from engine.export import format_from_path, write_records

    fmt = fmt or (format_from_path(out_path) if out_path else None) or "jsonl"
    with Store(db, read_only=True) as store:
        if not store.has_corpus(corpus):
            raise EditlensError(f"corpus {corpus!r} is not in {db}; see `editlens info`")
        rows = write_records(store.export_batches(corpus), fmt, out_path)
    if out_path:
        err.print(f"wrote {rows:,} examples to {out_path}")


@app.command()
def synth(
    out_path: Annotated[Path, typer.Option("--out", help="AESW XML file to write.")],
    sentences: Annotated[int, typer.Option(help="How many sentences.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same file.")] = 2016,
) -> None:
    """Generate a synthetic AESW-format corpus (how data/aesw-synthetic.xml was made)."""
    from engine.synth import write_aesw

    write_aesw(out_path, sentences, seed)
    err.print(f"wrote {sentences:,} synthetic sentences to {out_path}")


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

"""The reliability suite: every place user text or a path enters, attacked the way a hostile or
careless user would, each case checked for one line on stderr, exit code 1, no traceback, and
every table of the store unchanged (plus the attacked file, where there is one).

Cases run the CLI in-process through its real entry point (``engine.cli.main``) for speed; the
few that need a real process (a traceback printed by the interpreter, an exit code set by it)
run the installed ``editlens``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from rich.console import Console
from store_snapshot import snapshot

from engine.cli import main
from engine.corpus import tokenize_words
from engine.errors import EditlensError
from engine.export import write_records
from engine.highlight import sentence
from engine.ingest import ingest
from engine.store import Run, Store, publish_run
from engine.text import has_control, inert

EDITLENS = shutil.which("editlens") or str(Path(sys.executable).parent / "editlens")
XML = """<xml>
<sentence sid="1.1">We show<del>,</del> that the method works.</sentence>
<sentence sid="1.2">The <del>algoritm</del><ins>algorithm</ins> converges.</sentence>
<sentence sid="1.3">Nothing to change here.</sentence>
</xml>
"""


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def refused(self, code: int = 1) -> str:
        """The contract for bad input: exit 1 (2 for a usage error the argument parser catches),
        one line on stderr, no traceback; returns the line."""
        assert self.code == code, (self.code, self.out, self.err)
        assert "Traceback" not in self.err + self.out
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("error: ")
        return lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``editlens ARGS`` in this process, through the same entry point as the console script."""
    monkeypatch.delenv("EDITLENS_DB", raising=False)
    monkeypatch.setenv("COLUMNS", "80")

    def run(*args: str | Path) -> Outcome:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["editlens", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def real_cli(*args: str | Path, cwd: Path) -> Outcome:
    environment = {k: v for k, v in os.environ.items() if k != "EDITLENS_DB"}
    done = subprocess.run(
        [EDITLENS, *map(str, args)], cwd=cwd, env=environment, capture_output=True, text=True
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: a store holding corpus 'small' (3 sentences), the file it came from, and a
    staging store beside it as a job leaves one."""
    folder = tmp_path_factory.mktemp("template")
    source = folder / "small.xml"
    source.write_text(XML, encoding="utf-8")
    with Store(folder / "store.duckdb") as opened:
        ingest(opened, source)
    staging = folder / ".store.duckdb.staging" / "run.duckdb"
    staging.parent.mkdir()
    with Store(staging) as opened:
        ingest(opened, source)
    return folder


@pytest.fixture
def store(store_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template for each case (copying is much cheaper than ingesting)."""
    shutil.copytree(store_template, tmp_path, dirs_exist_ok=True)
    return tmp_path / "store.duckdb"


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# -- class 1: no output may destroy a store, leave half a file, or replace a file unasked --------

# name: (the --out a user typed, relative to the store's folder; what the line must say)
BAD_TARGETS = {
    "the store itself": ("store.duckdb", "is an editlens store"),
    "the store's WAL": ("store.duckdb.wal", "is an editlens store"),
    "a staging store": (".store.duckdb.staging/run.duckdb", "is an editlens store"),
    "an existing file": ("small.xml", "already exists; pass --force"),
    "a missing folder": ("missing/out.jsonl", "does not exist"),
    "a folder": (".", "is a folder"),
    "a file used as a folder": ("small.xml/out.jsonl", "is not a folder"),
}
WRITERS = {  # {db} stands for the store's path
    "export jsonl": ("export", "--corpus", "small", "--format", "jsonl", "--db", "{db}"),
    "export csv": ("export", "--corpus", "small", "--format", "csv", "--db", "{db}"),
    "export parquet": ("export", "--corpus", "small", "--format", "parquet", "--db", "{db}"),
    "synth": ("synth", "--sentences", "5"),
}


def writer_args(writer: str, db: Path) -> list[str]:
    return [str(db) if arg == "{db}" else arg for arg in WRITERS[writer]]


@pytest.mark.parametrize("target", BAD_TARGETS)
@pytest.mark.parametrize("writer", WRITERS)
def test_an_output_onto_a_store_or_a_bad_path_is_refused_and_changes_nothing(
    cli, store: Path, writer: str, target: str
) -> None:
    relative, says = BAD_TARGETS[target]
    out = store.parent / relative
    before, before_target = snapshot(store), digest(out)
    outcome = cli(*writer_args(writer, store), "--out", out)
    assert says in outcome.refused()
    assert snapshot(store) == before
    assert digest(out) == before_target
    assert not list(store.parent.glob(".*.part"))


@pytest.mark.parametrize("relative", ["store.duckdb", "store.duckdb.wal"])
def test_force_never_lets_an_output_replace_a_store(cli, store: Path, relative: str) -> None:
    before = snapshot(store)
    outcome = cli(*writer_args("export csv", store), "--out", store.parent / relative, "--force")
    assert "is an editlens store" in outcome.refused()
    assert snapshot(store) == before


def test_a_store_reached_through_a_symlink_is_refused(cli, store: Path) -> None:
    link = store.parent / "innocent.csv"
    link.symlink_to(store)
    before = snapshot(store)
    outcome = cli(*writer_args("export csv", store), "--out", link, "--force")
    assert "is an editlens store" in outcome.refused()
    assert snapshot(store) == before and link.is_symlink()


def test_force_replaces_an_existing_file_whole(cli, store: Path) -> None:
    out = store.parent / "old.jsonl"
    out.write_text("old content that is longer than the export " * 100)
    outcome = cli(*writer_args("export jsonl", store), "--out", out, "--force")
    assert outcome.code == 0, outcome.err
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [
        "1.1",
        "1.2",
        "1.3",
    ]


def test_the_export_function_refuses_the_store_it_was_given_even_before_it_exists(
    store: Path,
) -> None:
    fresh = store.parent / "new.duckdb"  # not a file yet: only the name protects it
    with Store(store, read_only=True) as opened, pytest.raises(EditlensError, match="store"):
        write_records(opened.export_batches("small"), "jsonl", fresh.with_name("new.duckdb.wal"),
                      protected=(fresh,))  # fmt: skip
    assert not fresh.with_name("new.duckdb.wal").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_interrupted_export_leaves_the_old_file_and_no_partial_one(
    store: Path, fmt: str
) -> None:
    out = store.parent / f"kept.{fmt}"
    out.write_bytes(b"the user's earlier export")

    def batches():
        with Store(store, read_only=True) as opened:
            yield from opened.export_batches("small")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_records(batches(), fmt, out, force=True)
    assert out.read_bytes() == b"the user's earlier export"
    assert sorted(p.name for p in store.parent.iterdir() if p.name.startswith(".kept")) == []


def test_an_interrupted_export_to_a_new_name_leaves_no_file(store: Path) -> None:
    out = store.parent / "new.csv"

    def batches():
        raise KeyboardInterrupt
        yield

    with pytest.raises(KeyboardInterrupt):
        write_records(batches(), "csv", out)
    assert not out.exists() and not list(store.parent.glob(".new.csv*"))


def test_an_empty_parquet_export_says_so_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "none.parquet"
    with pytest.raises(EditlensError, match="no examples to export"):
        write_records(iter(()), "parquet", out)
    assert not out.exists()


def test_export_onto_the_store_in_a_real_process_is_one_line_and_exit_1(store: Path) -> None:
    before = snapshot(store)
    outcome = real_cli(*writer_args("export csv", store), "--out", store, cwd=store.parent)
    assert "is an editlens store" in outcome.refused()
    assert snapshot(store) == before


# -- class 3: control characters in data are shown, never sent to the terminal -------------------

HOSTILE = {
    "clear screen": "\x1b[2J\x1b[H",
    "window title (OSC 0, BEL)": "\x1b]0;pwned\x07",
    "live link (OSC 8, ST)": "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "one-byte CSI (C1)": "\x9b31mred",
    "backspaces over text": "safe\x08\x08\x08\x08evil",
    "NUL and DEL": "a\x00b\x7fc",
}
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # any control character but newline


def released_rows(path: Path, texts: list[str]) -> Path:
    """A released-rationale file whose sentences carry ``texts`` between ordinary words."""
    rows = [
        {"id": f"h.{i}", "sent": f"We show {text} results .", "words":
         ["[CLS]", "We", "show", *text.split(), "results", ".", "[SEP]"], "best_words": [2]}
        for i, text in enumerate(texts)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", HOSTILE)
def test_inert_text_holds_no_control_character_and_keeps_its_length(name: str) -> None:
    text = f"before {HOSTILE[name]} after"
    shown = inert(text)
    assert not CONTROL.search(shown) and "\n" not in shown
    assert len(shown) == len(text)
    assert has_control(text) and not has_control(shown)


def test_inert_shows_escape_and_bell_as_their_control_pictures() -> None:
    assert inert("\x1b]0;t\x07\tx\n") == "␛]0;t␇ x "


@pytest.mark.parametrize("name", HOSTILE)
def test_show_draws_a_hostile_sentence_with_its_controls_visible(name: str) -> None:
    words, _, _ = tokenize_words(f"We show {HOSTILE[name]} results .")
    console = Console(file=io.StringIO(), color_system=None, width=200)
    console.print(sentence(words, [1], [float(i) for i in range(len(words))]))
    drawn = console.file.getvalue()
    assert not CONTROL.search(drawn), repr(drawn)
    assert "results" in drawn


def test_ingest_counts_the_sentences_with_control_characters_and_prints_none(
    cli, tmp_path: Path
) -> None:
    source = released_rows(tmp_path / "deleted.jsonl", [*HOSTILE.values(), "plain"])
    outcome = cli("ingest", source, "--db", tmp_path / "s.duckdb")
    assert outcome.code == 0, outcome.err
    assert re.search(rf"with control characters.*\b{len(HOSTILE)}\b", outcome.out)
    assert not CONTROL.search(outcome.out + outcome.err)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_to_a_terminal_sends_no_control_character(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    db = tmp_path / "s.duckdb"
    assert cli("ingest", released_rows(tmp_path / "deleted.jsonl", [*HOSTILE.values()]),
               "--db", db).code == 0  # fmt: skip
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    outcome = cli("export", "--corpus", "deleted", "--format", fmt, "--db", db)
    assert outcome.code == 0, outcome.err
    assert not CONTROL.search(outcome.out)


def test_a_jsonl_export_keeps_the_stored_text_exactly(cli, tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    texts = [*HOSTILE.values()]
    assert cli("ingest", released_rows(tmp_path / "deleted.jsonl", texts), "--db", db).code == 0
    outcome = cli("export", "--corpus", "deleted", "--db", db)
    exported = [json.loads(line)["text"] for line in outcome.out.splitlines()]
    assert exported == [f"We show {text} results ." for text in texts]


# -- classes 7 and 8: corpus files, liberal in their wrappers, strict in their values -----------

ROW = {"id": "5.2", "sent": "We show it .", "words": ["[CLS]", "We", "show", "it", ".", "[SEP]"],
       "best_words": [2]}  # fmt: skip
# name: (file name, content, what the one line must say)
BAD_CORPUS_FILES: dict[str, tuple[str, bytes, str]] = {
    "xml: nested ins in del": (
        "bad.xml", b'<xml>\n<sentence sid="1">a <del>b <ins>c</ins></del></sentence>\n</xml>',
        "line 2 (sentence 1): has <ins> inside <del>",
    ),
    "xml: no sentence at all": ("bad.xml", b"<doc><p>text</p></doc>", "holds no <sentence>"),
    "xml: sentence without sid": ("bad.xml", b"<xml><sentence>a</sentence></xml>", "no sid"),
    "xml: unclosed": ("bad.xml", b'<xml>\n<sentence sid="1">a\n</xml>', "not well-formed"),
    "xml: empty file": ("bad.xml", b"", "not well-formed"),
    "xml: latin-1 bytes": ("bad.xml", b'<xml><sentence sid="1">caf\xe9</sentence></xml>', "UTF-8"),
    "xml: duplicate ids": (
        "bad.xml", b'<xml><sentence sid="1">a</sentence><sentence sid="1">b</sentence></xml>',
        "occurs twice",  # names the corpus and the id, not the file: the store finds it
    ),
    "xml: a DuckDB store read as XML": ("bad.xml", b"", "not well-formed"),  # content: the store
    "xml.gz: cut short": ("bad.xml.gz", b"", "cannot be read"),  # content: made below
    "jsonl: null id": ("deleted.jsonl", json.dumps(ROW | {"id": None}).encode(), "id is null"),
    "jsonl: object id": ("deleted.jsonl", json.dumps(ROW | {"id": {}}).encode(), "id is {}"),
    "jsonl: best_words true": (
        "deleted.jsonl", json.dumps(ROW | {"best_words": True}).encode(), "malformed",
    ),
    "jsonl: best_words [true]": (
        "deleted.jsonl", json.dumps(ROW | {"best_words": [True]}).encode(), "must be indices",
    ),
    "jsonl: not json": ("deleted.jsonl", b"{oops", "is not JSON"),
    "jsonl: no rows": ("deleted.jsonl", b"\n\n", "holds no rows"),
    "jsonl: a list per line": ("deleted.jsonl", b"[1, 2]", "not a JSON object"),
}  # fmt: skip


def corpus_file(folder: Path, case: str, store: Path) -> Path:
    name, content, _ = BAD_CORPUS_FILES[case]
    if case == "xml: a DuckDB store read as XML":
        content = store.read_bytes()
    if case == "xml.gz: cut short":
        whole = gzip.compress(b'<xml><sentence sid="1">' + b"word " * 5000 + b"</sentence></xml>")
        content = whole[: len(whole) // 2]
    path = folder / "input" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", BAD_CORPUS_FILES)
def test_a_bad_corpus_file_is_one_line_and_leaves_the_store_as_it_was(
    cli, store: Path, case: str
) -> None:
    path = corpus_file(store.parent, case, store)
    before = snapshot(store)
    outcome = cli("ingest", path, "--corpus", "small", "--db", store)
    line = outcome.refused()
    assert BAD_CORPUS_FILES[case][2] in line
    assert str(path) in line or case == "xml: duplicate ids"
    assert snapshot(store) == before


# name: (arguments after `ingest`, with {file} for a good corpus file; what the line must say;
# the exit code: 2 where the argument parser refuses a value before the command runs)
BAD_INGEST_ARGUMENTS = {
    "a missing file": (["{missing}"], "no such file", 1),
    "a folder": (["{folder}"], "is a directory", 1),
    "an unknown format": (["{file}", "--format", "csv"], "csv", 1),
    "a name that says no format": (["{noext}"], "cannot tell the format", 1),
    "an unknown split": (["{file}", "--split", "holdout"], "holdout", 2),
    "an unknown kind": (["{jsonl}", "--kind", "typo"], "typo", 2),
    "kind none for a rationale file": (["{jsonl}", "--kind", "none"], "unknown kind 'none'", 1),
    "a kind for an XML file": (["{file}", "--kind", "deleted"], "--kind is for rationale", 1),
}


@pytest.mark.parametrize("case", BAD_INGEST_ARGUMENTS)
def test_bad_ingest_arguments_are_one_line_and_leave_the_store_as_it_was(
    cli, store: Path, case: str
) -> None:
    folder = store.parent
    (folder / "noext").write_text(XML)
    released_rows(folder / "rows.jsonl", ["plain"])
    places = {"missing": folder / "absent.xml", "folder": folder, "file": folder / "small.xml",
              "noext": folder / "noext", "jsonl": folder / "rows.jsonl"}  # fmt: skip
    args, says, code = BAD_INGEST_ARGUMENTS[case]
    before = snapshot(store)
    outcome = cli("ingest", *[a.format(**places) for a in args], "--db", store)
    assert says in outcome.refused(code)
    assert snapshot(store) == before


# -- class 4: a model folder that would load wrong is refused before anything is written -------


@pytest.mark.slow  # loads torch and transformers; tests/test_models.py covers the loader fast
@pytest.mark.parametrize(
    ("damage", "says"),
    [("tokenizer", "no tokenizer files"), ("layers", "the weights lack layer(s) 6, 7")],
)
def test_evaluating_a_damaged_model_folder_is_one_line_and_writes_nothing(
    cli, store: Path, damage: str, says: str
) -> None:
    from engine.models import bundled_minilm

    folder = store.parent / "model"
    shutil.copytree(bundled_minilm(), folder)
    if damage == "tokenizer":
        for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
            (folder / name).unlink(missing_ok=True)
    else:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 8}))
    before = snapshot(store)
    outcome = cli("evaluate", "--corpus", "small", "--split", "all", "--model", folder,
                  "--db", store)  # fmt: skip
    assert says in outcome.refused()
    assert snapshot(store) == before


# -- classes 4 and 6 in training: damaged resume state, an unwritable --out, too long a length --

TRAIN_ARGS = ("train", "--corpus", "tiny", "--epochs", "2", "--batch-size", "16",
              "--max-length", "32", "--checkpoint-every", "1", "--device", "cpu")  # fmt: skip


class Interrupted(Exception):
    """Raised from the progress callback: the run stops as a kill would, after a checkpoint."""


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: a store holding 'tiny', a corpus with train and dev splits to train on."""
    from train_fixture import corpus, make_store

    return make_store(tmp_path_factory.mktemp("tiny") / "store.duckdb", "tiny", corpus())


@pytest.fixture(scope="module")
def trainable(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: a copy of the tiny store, a tiny BERT in model/, in ckpt/ the state of a run
    of TRAIN_ARGS stopped after its second optimizer step, and in done/ that run with one epoch,
    finished."""
    from train_fixture import tiny_model

    from engine.train import TrainSpec, train

    folder = tmp_path_factory.mktemp("trainable")
    db = shutil.copy2(tiny_store, folder / "store.duckdb")
    model = tiny_model(folder / "model")

    def stop(progress) -> None:
        if progress.step == 2:
            raise Interrupted

    spec = TrainSpec(corpus="tiny", model=str(model), epochs=2, batch_size=16, max_length=32,
                     checkpoint_every=1, device="cpu", out=folder / "ckpt")  # fmt: skip
    with pytest.raises(Interrupted):
        train(db, spec, stop)
    train(db, dataclasses.replace(spec, epochs=1, out=folder / "done"), merge=False)
    return folder


@pytest.fixture
def resumable(trainable: Path, tmp_path: Path) -> Path:
    """A fresh copy of the store and the stopped run's state (the model stays where it is)."""
    for name in ("store.duckdb", "ckpt"):
        copy = shutil.copytree if (trainable / name).is_dir() else shutil.copy2
        copy(trainable / name, tmp_path / name)
    return tmp_path


def train_cli(cli, folder: Path, model: Path, *args: str | Path) -> Outcome:
    return cli(*TRAIN_ARGS, "--model", model, "--db", folder / "store.duckdb", *args)


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def without_history(path: Path) -> None:
    state = json.loads(path.read_text())
    del state["history"]
    path.write_text(json.dumps(state))


# name: (the file of ckpt/last damaged, how)
DAMAGED_STATES = {
    "optimizer tensors cut short": ("optimizer.safetensors", cut_short),
    "generator states cut short": ("rng.safetensors", cut_short),
    "model weights cut short": ("model.safetensors", cut_short),
    "state.json garbage": ("state.json", lambda p: p.write_text("garbage{")),
    "state.json empty": ("state.json", lambda p: p.write_bytes(b"")),
    "state.json a list": ("state.json", lambda p: p.write_text("[]")),
    "state.json without its history": ("state.json", without_history),
    "optimizer.json garbage": ("optimizer.json", lambda p: p.write_text("{")),
    "optimizer.json of another model": (
        "optimizer.json", lambda p: p.write_text('{"plain": {}, "param_groups": []}')),
    "scheduler.json garbage": ("scheduler.json", lambda p: p.write_text("nope")),
}  # fmt: skip


@pytest.mark.slow  # trains a tiny model once for the module, loads it in each case
@pytest.mark.parametrize("case", DAMAGED_STATES)
def test_resuming_from_a_damaged_state_is_one_line_naming_the_file(
    cli, trainable: Path, resumable: Path, case: str
) -> None:
    name, damage = DAMAGED_STATES[case]
    last = resumable / "ckpt" / "last"
    damage(last / name)
    files = {path.name: digest(path) for path in last.iterdir()}
    before = snapshot(resumable / "store.duckdb")
    line = train_cli(cli, resumable, trainable / "model", "--out", resumable / "ckpt").refused()
    assert f"{last / name}: " in line
    assert line.endswith(f"remove {last} to start the run afresh, or pass another --out")
    assert {path.name: digest(path) for path in last.iterdir()} == files  # not trained over
    assert snapshot(resumable / "store.duckdb") == before


@pytest.mark.slow
def test_an_intact_stopped_state_resumes(cli, trainable: Path, resumable: Path) -> None:
    """The counterpart of the damaged cases: the same command on the state as saved resumes it
    (a fresh start would stamp a new start time) and trains to the end."""
    state = resumable / "ckpt" / "last" / "state.json"
    started = json.loads(state.read_text())["started"]
    outcome = train_cli(cli, resumable, trainable / "model", "--out", resumable / "ckpt")
    assert outcome.code == 0, outcome.err
    assert json.loads(state.read_text())["started"] == started
    assert json.loads(state.read_text())["epoch"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "says"),
    [(lambda p: p.write_text("garbage"), "cannot be read"),
     (lambda p: p.unlink(), "cannot be read (No such file or directory)"),
     (lambda p: p.write_text("{}"), "has no number of layers and heads")],
    ids=["garbage", "missing", "no layer counts"],
)  # fmt: skip
def test_rerunning_a_finished_run_whose_best_config_is_damaged_is_one_line_naming_it(
    cli, trainable: Path, tmp_path: Path, damage, says: str
) -> None:
    """A finished run is published again without loading a model, from best/config.json."""
    shutil.copy2(trainable / "store.duckdb", tmp_path / "store.duckdb")
    shutil.copytree(trainable / "done", tmp_path / "done")
    damage(tmp_path / "done" / "best" / "config.json")
    before = snapshot(tmp_path / "store.duckdb")
    outcome = train_cli(cli, tmp_path, trainable / "model", "--epochs", "1", "--out",
                        tmp_path / "done")  # fmt: skip
    line = outcome.refused()
    assert line.startswith(f"error: {tmp_path / 'done' / 'best' / 'config.json'}: {says}")
    assert snapshot(tmp_path / "store.duckdb") == before


def refuse_to_load_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading a model fail loudly, to show a refusal came before it."""
    import engine.models

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr(engine.models, "load_model", load_model)


# name: (--out, relative to the case's folder {dir}; what the line says)
UNWRITABLE_OUTS = {
    "a folder under a file": ("notes.txt/ckpt", "{dir}/notes.txt is a file, not a folder"),
    "a folder two levels under a file": (
        "notes.txt/a/b",
        "{dir}/notes.txt is a file, not a folder",
    ),
    "a file": ("notes.txt", "it is a file, not a folder"),
}


@pytest.mark.parametrize("case", UNWRITABLE_OUTS)
def test_training_into_a_folder_it_cannot_write_fails_before_loading_the_model(
    cli, tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    shutil.copy2(tiny_store, tmp_path / "store.duckdb")
    (tmp_path / "notes.txt").write_text("the user's notes")
    refuse_to_load_a_model(monkeypatch)
    relative, says = UNWRITABLE_OUTS[case]
    line = train_cli(cli, tmp_path, Path("minilm"), "--out", tmp_path / relative).refused()
    assert line == f"error: {tmp_path / relative}: {says.format(dir=tmp_path)}; pass another --out"
    assert (tmp_path / "notes.txt").read_text() == "the user's notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "store.duckdb"]


def test_a_run_refused_for_its_model_leaves_no_checkpoint_folder(
    cli, tiny_store: Path, tmp_path: Path
) -> None:
    """The --out probe writes nothing, so a refusal after it leaves nothing either."""
    shutil.copy2(tiny_store, tmp_path / "store.duckdb")
    (tmp_path / "notes.txt").write_text("not a model")
    train_cli(cli, tmp_path, tmp_path / "notes.txt", "--out", tmp_path / "ckpt").refused()
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_training_into_a_read_only_folder_fails_before_loading_the_model(
    cli, tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy2(tiny_store, tmp_path / "store.duckdb")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    refuse_to_load_a_model(monkeypatch)
    try:
        line = train_cli(cli, tmp_path, Path("minilm"), "--out", locked / "ckpt").refused()
    finally:
        locked.chmod(0o755)
    assert "cannot write checkpoints there (Permission denied)" in line
    assert not any(locked.iterdir())


MAX_LENGTH_ARGS = {"train": ("--out", "{dir}/ckpt"), "evaluate": ("--split", "dev")}


@pytest.mark.slow  # loads the tiny model
@pytest.mark.parametrize("command", MAX_LENGTH_ARGS)
def test_a_max_length_beyond_the_models_positions_is_one_line_before_any_step(
    cli, trainable: Path, tiny_store: Path, tmp_path: Path, command: str
) -> None:
    """The tiny model has 64 positions: a longer sentence would crash the run midway."""
    db = shutil.copy2(tiny_store, tmp_path / "store.duckdb")
    before = snapshot(db)
    args = [a.format(dir=tmp_path) for a in MAX_LENGTH_ARGS[command]]
    outcome = cli(command, "--corpus", "tiny", "--model", trainable / "model", "--max-length",
                  "65", "--device", "cpu", *args, "--db", db)  # fmt: skip
    line = outcome.refused()
    assert line.endswith("has positions for; use at most 64")
    assert snapshot(db) == before
    assert not (tmp_path / "ckpt" / "last").exists()


# -- class 5: a re-ingest never puts new text under old scores --------------------------------

CHANGED_XML = XML.replace("the method works", "the model works")  # sentence 1.1 changes


def stage_run(store: Path, run_id: str, examples: list[str]) -> Path:
    """A finished evaluation of ``examples`` of corpus 'small', staged as a job stages one (its
    own copy of the examples, predictions, the run row), without a model."""
    staging = store.parent / f".{store.name}.staging" / f"{run_id}.duckdb"
    staging.parent.mkdir(exist_ok=True)
    n = len(examples)
    with Store(store, read_only=True) as main, Store(staging) as job:
        job.write_examples("small", [pa.Table.from_batches(list(main.example_batches("small")))])
        job.write_chunk({"predictions": pa.table({
            "run": [run_id] * n, "example": examples, "label": [True] * n, "prob": [0.9] * n,
            "pred": [True] * n, "confidence": [0.9] * n, "seen_words": [5] * n,
            "scorable": [True] * n,
        })})  # fmt: skip
        now = datetime(2026, 1, 1)
        job.record_run(Run(run_id, "evaluate", "minilm", "minilm", "small", "all", 6, 12, {}, {},
                           now, now))  # fmt: skip
    return staging


@pytest.fixture
def scored(store: Path) -> Path:
    """The store with run 'r1' published over sentences 1.1 and 1.2."""
    publish_run(store, stage_run(store, "r1", ["1.1", "1.2"]), "r1")
    return store


def test_reingesting_the_same_file_under_a_run_changes_nothing_and_says_what_it_replaced(
    cli, scored: Path
) -> None:
    before = snapshot(scored)
    outcome = cli("ingest", scored.parent / "small.xml", "--db", scored)
    assert outcome.code == 0, outcome.err
    assert re.search(r"ids already in the corpus, replaced\s*│\s*3", outcome.out)
    assert re.search(r"of them with changed text or rationale\s*│\s*0", outcome.out)
    assert snapshot(scored) == before


def test_a_reingest_that_changes_scored_sentences_is_refused_in_one_line(cli, scored: Path) -> None:
    changed = scored.parent / "small.xml"
    changed.write_text(CHANGED_XML)
    before = snapshot(scored)
    line = cli("ingest", changed, "--db", scored).refused()
    assert "changes sentences that 1 run(s) were scored or trained on (e.g. r1)" in line
    assert "--replace-scored" in line
    assert snapshot(scored) == before


def test_replace_scored_stale_keeps_the_run_marked_stale_and_bumps_the_version(
    cli, scored: Path
) -> None:
    (scored.parent / "small.xml").write_text(CHANGED_XML)
    with Store(scored, read_only=True) as opened:
        version = opened.corpus_version("small")
    outcome = cli(
        "ingest", scored.parent / "small.xml", "--replace-scored", "stale", "--db", scored
    )
    assert outcome.code == 0, outcome.err
    assert re.search(r"runs that used changed sentences, marked stale\s*│\s*1", outcome.out)
    with Store(scored, read_only=True) as opened:
        assert [run.id for run in opened.runs()] == ["r1"]
        assert set(opened.stale_runs()) == {"r1"}
        assert opened.corpus_version("small") == version + 1
    assert "evaluate (stale)" in cli("info", "--db", scored).out


def test_replace_scored_remove_deletes_every_row_of_the_affected_run(cli, scored: Path) -> None:
    (scored.parent / "small.xml").write_text(CHANGED_XML)
    outcome = cli(
        "ingest", scored.parent / "small.xml", "--replace-scored", "remove", "--db", scored
    )
    assert outcome.code == 0, outcome.err
    tables = snapshot(scored)
    assert tables["runs"] == [] and tables["predictions"] == []
    assert not any("r1" in str(row) for row in tables["meta"])


def test_a_reingest_that_changes_only_unscored_sentences_is_allowed(cli, scored: Path) -> None:
    (scored.parent / "small.xml").write_text(XML.replace("Nothing to change", "Nothing to fix"))
    outcome = cli("ingest", scored.parent / "small.xml", "--db", scored)
    assert outcome.code == 0, outcome.err
    with Store(scored, read_only=True) as opened:
        assert opened.stale_runs() == {}


def test_a_run_staged_before_a_reingest_is_published_stale(cli, store: Path) -> None:
    staging = stage_run(store, "r2", ["1.1"])  # scored the old text of 1.1 ...
    (store.parent / "small.xml").write_text(CHANGED_XML)
    assert cli("ingest", store.parent / "small.xml", "--db", store).code == 0  # ... now changed
    publish_run(store, staging, "r2")
    with Store(store, read_only=True) as opened:
        assert opened.stale_runs() == {
            "r2": "scored 1 sentences that changed before it was published"
        }


def test_a_second_file_into_the_same_corpus_says_how_many_ids_it_replaced(cli, store: Path) -> None:
    second = store.parent / "second.xml"
    second.write_text('<xml><sentence sid="1.3">Nothing to change here.</sentence>'
                      '<sentence sid="9.9">A new one.</sentence></xml>')  # fmt: skip
    outcome = cli("ingest", second, "--corpus", "small", "--db", store)
    assert outcome.code == 0, outcome.err
    assert re.search(r"ids already in the corpus, replaced\s*│\s*1", outcome.out)


# -- every command: bad values and bad stores are one line, and the store is left as it was ----

# (arguments, with {db} for the store and {dir} for its folder; exit code)
BAD_ARGUMENTS: dict[str, tuple[tuple[str, ...], int]] = {
    "export: unknown corpus": (("export", "--corpus", "nope", "--db", "{db}"), 1),
    "export: unknown format": (("export", "--corpus", "small", "--format", "xml", "--db", "{db}"), 1),
    "export: parquet to stdout": (("export", "--corpus", "small", "--format", "parquet",
                                   "--db", "{db}"), 1),
    "synth: negative count": (("synth", "--sentences", "-1", "--out", "{dir}/s.xml"), 2),
    "synth: zero count": (("synth", "--sentences", "0", "--out", "{dir}/s.xml"), 2),
    "evaluate: limit 0": (("evaluate", "--corpus", "small", "--limit", "0", "--db", "{db}"), 2),
    "evaluate: limit -1": (("evaluate", "--corpus", "small", "--limit", "-1", "--db", "{db}"), 2),
    "evaluate: batch size 0": (("evaluate", "--corpus", "small", "--batch-size", "0",
                                "--db", "{db}"), 2),
    "evaluate: ig steps 0": (("evaluate", "--corpus", "small", "--ig-steps", "0", "--db", "{db}"), 2),
    "evaluate: methods ','": (("evaluate", "--corpus", "small", "--methods", ",", "--db", "{db}"), 1),
    "evaluate: unknown method": (("evaluate", "--corpus", "small", "--methods", "magic",
                                  "--db", "{db}"), 1),
    "evaluate: unknown corpus": (("evaluate", "--corpus", "nope", "--db", "{db}"), 1),
    "evaluate: a model that is a file": (("evaluate", "--corpus", "small", "--model",
                                          "{dir}/small.xml", "--db", "{db}"), 1),
    "train: unknown corpus": (("train", "--corpus", "nope", "--db", "{db}"), 1),
    "report: unknown run": (("report", "--run", "nope", "--db", "{db}"), 1),
    "report: unknown metric": (("report", "--metric", "magic", "--db", "{db}"), 2),
    "show: no evaluation yet": (("show", "1.1", "--db", "{db}"), 1),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_a_bad_argument_to_any_command_is_one_line_and_changes_nothing(
    cli, store: Path, case: str
) -> None:
    args, code = BAD_ARGUMENTS[case]
    before = snapshot(store)
    outcome = cli(*[a.format(db=store, dir=store.parent) for a in args])
    outcome.refused(code)
    assert snapshot(store) == before
    assert not (store.parent / "s.xml").exists()


def damaged_store(folder: Path, how: str, store: Path) -> Path:
    """A file given as --db that is not a usable store."""
    target = folder / f"{how}.duckdb"
    if how == "a folder":
        target.mkdir()
    elif how == "a corpus file":
        target.write_text(XML)
    elif how == "an empty file":
        target.write_bytes(b"")
    elif how == "a store cut short":
        target.write_bytes(store.read_bytes()[:20_000])
    elif how == "a store with garbage in its middle":
        data = bytearray(store.read_bytes())
        data[8192:16384] = b"\xff" * 8192
        target.write_bytes(bytes(data))
    elif how == "a schema version that is not a number":
        import duckdb

        shutil.copy2(store, target)
        with duckdb.connect(str(target)) as con:
            con.execute("UPDATE meta SET value = 'x' WHERE key = 'schema_version'")
    return target


BAD_STORES = ("missing", "a folder", "a corpus file", "an empty file", "a store cut short",
              "a store with garbage in its middle",
              "a schema version that is not a number")  # fmt: skip
STORE_COMMANDS = {"info": ("info",), "export": ("export", "--corpus", "small"),
                  "report": ("report",), "show": ("show", "1.1"),
                  "ingest": ("ingest", "{dir}/small.xml")}  # fmt: skip


@pytest.mark.parametrize(
    ("command", "how"),
    [(c, h) for c in STORE_COMMANDS for h in BAD_STORES if (c, h) != ("ingest", "missing")],
)  # ingest makes a store where there is none
def test_a_bad_store_file_is_one_line_for_every_command(
    cli, store: Path, command: str, how: str
) -> None:
    target = damaged_store(store.parent, how, store)
    before = digest(target)
    outcome = cli(*[a.format(dir=store.parent) for a in STORE_COMMANDS[command]], "--db", target)
    outcome.refused()
    assert digest(target) == before


def test_a_schema_version_that_is_not_a_number_is_named_as_a_damaged_store(
    cli, store: Path
) -> None:
    target = damaged_store(store.parent, "a schema version that is not a number", store)
    line = cli("info", "--db", target).refused()
    assert line == (
        f"error: {target}: store schema version 'x' is not a number (a damaged store); "
        "use another --db or a backup"
    )


# -- classes 2 and 3 on the way out: hostile text from a store reaches no parser and no terminal -

HOSTILE_NAME = "[/bold][link=https://evil.example]x\x1b]0;t\x07"


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A store whose corpus, sentences and run's model name are hostile, with run 'r1' over
    every sentence (attention scores at layer 6)."""
    db = tmp_path / "hostile.duckdb"
    texts = [*HOSTILE.values(), "[/] [bold]not markup[/bold] [link=https://evil.example]x[/link]"]
    source = released_rows(tmp_path / "deleted.jsonl", texts)
    with Store(db) as opened:
        ingest(opened, source, corpus=HOSTILE_NAME)
        examples = opened.example_batches(HOSTILE_NAME)
        table = pa.Table.from_batches(list(examples))
    ids, words = table.column("id").to_pylist(), table.column("words").to_pylist()
    staging = tmp_path / "r1.duckdb"
    n = len(ids)
    with Store(staging) as job:
        job.write_examples(HOSTILE_NAME, [table])
        job.write_chunk({
            "predictions": pa.table({
                "run": ["r1"] * n, "example": ids, "label": [True] * n, "prob": [0.9] * n,
                "pred": [True] * n, "confidence": [0.9] * n,
                "seen_words": [len(w) for w in words], "scorable": [True] * n}),
            "scores": pa.table({
                "run": ["r1"] * n, "example": ids, "method": ["attention"] * n,
                "layer": pa.array([6] * n, pa.int16()),
                "scores": [[float(i) for i in range(len(w))] for w in words]}),
            "outcomes": pa.table({
                "run": ["r1"] * n, "method": ["attention"] * n,
                "layer": pa.array([6] * n, pa.int16()), "example": ids, "label": [True] * n,
                "pred": [True] * n, "confidence": [0.9] * n, "kind": ["deleted"] * n,
                "rationale_size": pa.array([1] * n, pa.int16()),
                "seen_words": pa.array([len(w) for w in words], pa.int32()),
                "scorable": [True] * n, "top3": [True] * n}),
        })  # fmt: skip
        now = datetime(2026, 1, 1)
        job.record_run(Run("r1", "evaluate", HOSTILE_NAME, "minilm", HOSTILE_NAME, "all", 6, 12,
                           {}, {}, now, now))  # fmt: skip
    publish_run(db, staging, "r1")
    return db


@pytest.mark.parametrize("index", range(len(HOSTILE) + 1))
def test_show_prints_a_hostile_sentence_inert_and_its_markup_as_text(
    cli, hostile: Path, index: int
) -> None:
    outcome = cli("show", f"h.{index}", "--run", "r1", "--layer", "6", "--db", hostile)
    assert outcome.code == 0, outcome.err
    assert not CONTROL.search(outcome.out + outcome.err), repr(outcome.out)
    assert "results" in outcome.out
    if index == len(HOSTILE):
        assert "[bold]not" in outcome.out and "[link=https://evil.example]x[/link]" in outcome.out


def test_info_prints_a_hostile_corpus_and_model_name_as_inert_text(
    cli, hostile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # whole names, not cut to fit 80 columns
    outcome = cli("info", "--db", hostile)
    assert outcome.code == 0, outcome.err
    assert not CONTROL.search(outcome.out + outcome.err), repr(outcome.out)
    assert "[/bold][link=https://evil.example]x" in outcome.out.replace("\n", "")


@pytest.mark.parametrize("name", [*HOSTILE, "newline"])
def test_an_error_naming_a_hostile_path_is_one_inert_line(cli, store: Path, name: str) -> None:
    hostile = HOSTILE.get(name, "two\nlines")
    missing = store.parent / f"in{hostile}put.xml"
    outcome = cli("ingest", missing, "--db", store)
    nul = "\x00" in hostile  # no file system takes it: the argument parser refuses it
    line = outcome.refused(2 if nul else 1)
    assert not CONTROL.search(outcome.err)
    assert ("null byte" if nul else "no such file") in line


@pytest.mark.parametrize("plot", [(), ("--plot",)], ids=["tables", "plot"])
def test_report_prints_a_hostile_model_name_as_inert_text(
    cli, hostile: Path, monkeypatch: pytest.MonkeyPatch, plot: tuple[str, ...]
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    outcome = cli("report", *plot, "--db", hostile)
    assert outcome.code == 0, outcome.err
    assert not CONTROL.search(outcome.out + outcome.err), repr(outcome.out)
    assert "[/bold][link=https://evil.example]x" in outcome.out

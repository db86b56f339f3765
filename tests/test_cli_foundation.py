"""The CLI end to end in a subprocess: ingest, info, export, and the bad-input contract."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb  # tests read and tamper with store files directly; the engine goes through Store
import pyarrow.parquet as pq
import pytest
from safetensors import SafetensorError
from store_snapshot import snapshot

from engine import cli, pipeline
from engine.errors import EditlensError
from engine.ingest import ingest
from engine.pipeline import DemoSpec
from engine.specs import EvalSpec, default
from engine.store import SCHEMA_VERSION, Store
from engine.study import StudySpec
from engine.train import TrainSpec

EDITLENS = shutil.which("editlens") or str(Path(sys.executable).parent / "editlens")

XML = """<xml>
<sentence sid="1.1">We show<del>,</del> that the method works.</sentence>
<sentence sid="1.2">The <del>algoritm</del><ins>algorithm</ins> converges.</sentence>
<sentence sid="1.3">We use<ins> the</ins> method.</sentence>
<sentence sid="1.4">The <del>big</del><ins>large</ins> model fails.</sentence>
<sentence sid="1.5">Nothing to change here.</sentence>
</xml>
"""
ROW = {
    "id": "5.2",
    "sent": "The applied control law is now defined by: _MATHDISP_",
    "words": ["[CLS]", "The", "applied", "control", "law", "is", "now", "defined", "by", ":",
              "_MATHDISP_", "[SEP]"],
    "best_words": [9],
}  # fmt: skip


def editlens_all(
    commands: list[tuple[str | Path, ...]], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands side by side (each start costs ~0.5 s of imports)."""
    environment = {k: v for k, v in os.environ.items() if k != "EDITLENS_DB"}
    started = [
        (
            args,
            subprocess.Popen(
                [EDITLENS, *map(str, args)],
                cwd=cwd,
                env=environment,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )
        for args in commands
    ]
    results = []
    for args, process in started:
        stdout, stderr = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return results


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.xml"
    path.write_text(XML, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path, store_with) -> Path:
    """A store holding corpus 'small' (5 sentences), made in-process: the CLI ingest is tested above."""
    return store_with(tmp_path, XML, "small")


@pytest.fixture
def export_jsonl(editlens, succeeded):
    """``export_jsonl(db, cwd, corpus="small")``: the corpus' records, through `editlens export`."""

    def export(db: Path, cwd: Path, corpus: str = "small") -> list[dict[str, Any]]:
        result = succeeded(editlens("export", "--corpus", corpus, "--db", db, cwd=cwd))
        return [json.loads(line) for line in result.stdout.splitlines()]

    return export


# -- the happy path ----------------------------------------------------------------------------


def test_ingest_prints_a_summary_and_info_shows_the_corpus(
    tmp_path: Path, corpus_file: Path, editlens, succeeded
) -> None:
    db = tmp_path / "store.duckdb"
    result = succeeded(editlens("ingest", corpus_file, "--db", db, cwd=tmp_path))
    assert "sentences written" in result.stdout
    assert "kind spelling" in result.stdout
    assert "Traceback" not in result.stderr
    info = succeeded(editlens("info", "--db", db, cwd=tmp_path))
    assert "small" in info.stdout
    assert "inserted=1" in info.stdout


def test_export_writes_one_json_record_per_example_to_stdout(
    store: Path, tmp_path: Path, export_jsonl
) -> None:
    records = export_jsonl(store, tmp_path)
    assert [r["id"] for r in records] == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    first = records[0]
    assert set(first) == {"id", "split", "text", "label", "kind", "words", "rationale"}
    assert first["text"] == "We show, that the method works."
    assert (first["label"], first["kind"], first["rationale"]) == (True, "deleted", [2])
    assert [r["kind"] for r in records] == ["deleted", "spelling", "inserted", "mixed", "none"]


def test_export_writes_csv_with_lists_as_json_cells(
    store: Path, tmp_path: Path, editlens, succeeded
) -> None:
    result = succeeded(
        editlens("export", "--corpus", "small", "--format", "csv", "--db", store, cwd=tmp_path)
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    assert json.loads(rows[0]["words"])[:3] == ["We", "show", ","]
    assert json.loads(rows[2]["rationale"]) == [1, 2]


def test_export_writes_parquet_to_the_out_file(
    store: Path, tmp_path: Path, editlens, succeeded, export_jsonl
) -> None:
    out = tmp_path / "small.parquet"
    result = succeeded(
        editlens("export", "--corpus", "small", "--out", out, "--db", store, cwd=tmp_path)
    )
    assert result.stdout == ""
    table = pq.read_table(out)
    assert table.num_rows == 5
    assert table.column("rationale").to_pylist()[0] == [2]
    assert table.to_pylist() == export_jsonl(store, tmp_path)


def test_the_editlens_db_variable_chooses_the_store(
    tmp_path: Path, corpus_file: Path, editlens, succeeded, export_jsonl
) -> None:
    db = tmp_path / "from-env.duckdb"
    env = {"EDITLENS_DB": str(db)}
    succeeded(editlens("ingest", corpus_file, cwd=tmp_path, env=env))
    assert db.exists()
    assert not (tmp_path / "editlens.duckdb").exists()
    assert "small" in succeeded(editlens("info", cwd=tmp_path, env=env)).stdout
    assert len(export_jsonl(db, tmp_path)) == 5


def test_without_db_or_variable_the_store_is_in_the_working_directory(
    tmp_path: Path, corpus_file: Path, editlens, succeeded
) -> None:
    succeeded(editlens("ingest", corpus_file, cwd=tmp_path))
    assert (tmp_path / "editlens.duckdb").exists()


def test_reingesting_through_the_cli_changes_nothing(
    store: Path, corpus_file: Path, editlens, succeeded
) -> None:
    before = snapshot(store)
    succeeded(editlens("ingest", corpus_file, "--db", store, cwd=corpus_file.parent))
    assert snapshot(store) == before


def test_the_released_format_ingests_with_pairs(
    tmp_path: Path, editlens, succeeded, export_jsonl
) -> None:
    path = tmp_path / "deleted.jsonl"
    path.write_text(json.dumps(ROW) + "\n", encoding="utf-8")
    db = tmp_path / "store.duckdb"
    result = succeeded(editlens("ingest", path, "--pairs", "--db", db, cwd=tmp_path))
    assert "pairs" in result.stdout
    records = export_jsonl(db, tmp_path, "deleted")
    assert [(r["id"], r["label"]) for r in records] == [("5.2", True), ("5.2/edited", False)]


# -- bad input ---------------------------------------------------------------------------------

LINE = json.dumps(ROW)
BAD_FILES: dict[str, tuple[str, bytes, str | None]] = {
    # case: (file name, content, the location the error must name besides the file)
    "unclosed-tag": ("bad.xml", b'<xml>\n<sentence sid="1.1">ok\n</xml>\n', "line 3"),
    "no-sentence": (
        "bad.xml",
        b"<doc><p>x</p></doc>",
        None,
    ),  # any root is fine, no sentence is not
    "not-xml": ("bad.xml", b"just some words\n", "line 1"),
    "empty": ("bad.xml", b"", "line 1"),
    "non-utf8-xml": ("bad.xml", b'<xml><sentence sid="1.1">caf\xe9</sentence></xml>', "line 1"),
    "non-utf8-jsonl": ("deleted.jsonl", (LINE + "\n").encode() + b"\xff\xfe\n", "line 2"),
    "jsonl-not-json": ("deleted.jsonl", f"{LINE}\n{{oops\n".encode(), "line 2"),
    "jsonl-lacks-field": (
        "deleted.jsonl",
        f'{LINE}\n{{"id": "7.1"}}\n'.encode(),
        "line 2 (id 7.1): lacks field sent",
    ),
    "jsonl-word-not-in-sent": (
        "deleted.jsonl",
        json.dumps(dict(ROW, words=["[CLS]", "zzz", "[SEP]"])).encode(),
        "id 5.2",
    ),
}


def assert_refused(result: subprocess.CompletedProcess[str], path: Path, where: str | None) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr
    if where is not None:
        assert where in result.stderr
    assert result.stdout == ""


@dataclass
class BadRun:
    """One refused ingest: the input, what the error must name, the result, the store around it."""

    path: Path
    where: str | None
    result: subprocess.CompletedProcess[str]
    before: dict[str, list[tuple[Any, ...]]]
    after: dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory, store_with) -> dict[str, BadRun]:
    """Every bad-input case ingested once, side by side, each into its own copy of a store."""
    root = tmp_path_factory.mktemp("bad")
    template = store_with(root, XML, "small")
    cases: dict[str, tuple[Path, str | None, Path]] = {}
    for case, (name, content, where) in {
        **BAD_FILES,
        "missing-path": ("absent.xml", None, None),
    }.items():
        folder = root / case
        folder.mkdir()
        path = folder / name
        if content is not None:
            path.write_bytes(content)
        db = folder / "store.duckdb"
        shutil.copy(template, db)
        cases[case] = (path, where, db)
    before = {case: snapshot(db) for case, (_, _, db) in cases.items()}
    results = editlens_all(
        [("ingest", path, "--corpus", "small", "--db", db) for path, _, db in cases.values()], root
    )
    return {
        case: BadRun(path, where, result, before[case], snapshot(db))
        for (case, (path, where, db)), result in zip(cases.items(), results, strict=True)
    }


BAD_CASES = [*sorted(BAD_FILES), "missing-path"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_input_fails_naming_the_file_without_a_traceback(
    bad_runs: dict[str, BadRun], case: str
) -> None:
    run = bad_runs[case]
    assert_refused(run.result, run.path, run.where)


@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_input_leaves_the_store_unchanged(bad_runs: dict[str, BadRun], case: str) -> None:
    run = bad_runs[case]
    assert run.after == run.before
    assert len(run.after["examples"]) == 5


@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_input_gives_exactly_one_line_on_stderr(
    bad_runs: dict[str, BadRun], case: str
) -> None:
    stderr = bad_runs[case].result.stderr
    assert len(stderr.splitlines()) == 1, stderr


def test_a_missing_input_path_says_so(bad_runs: dict[str, BadRun]) -> None:
    assert "no such file" in bad_runs["missing-path"].result.stderr


def test_a_large_ingest_failing_half_way_leaves_none_of_its_rows(
    tmp_path: Path, store: Path, editlens
) -> None:
    """More sentences than one write chunk (10,000), then a broken tag: the first chunk is undone."""
    path = tmp_path / "large.xml"
    with path.open("w", encoding="utf-8") as out:
        out.write("<xml>\n")
        for i in range(10_200):  # ids 1.1 .. overlap the stored corpus, with other text
            out.write(
                f'<sentence sid="{i // 10}.{i % 10}">Changed<del>,</del> text {i}.</sentence>\n'
            )
        out.write('<sentence sid="x">broken\n</xml>\n')
    before = snapshot(store)
    result = editlens("ingest", path, "--corpus", "small", "--db", store, cwd=tmp_path)
    assert_refused(result, path, "line 10203")
    assert snapshot(store) == before


STORE_COMMANDS = {
    "ingest": ("ingest", "small.xml"),
    "info": ("info",),
    "export": ("export", "--corpus", "small"),
}


def refusals(store: Path, cwd: Path) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Each command against its own copy of ``store`` (side by side: DuckDB locks a file per process)."""
    copies = {}
    for name in STORE_COMMANDS:
        copies[name] = cwd / f"{name}-{store.name}"
        shutil.copy(store, copies[name])
    commands = [(*args, "--db", copies[name]) for name, args in STORE_COMMANDS.items()]
    results = editlens_all(commands, cwd)
    return {
        name: (copies[name], result) for name, result in zip(STORE_COMMANDS, results, strict=True)
    }


def test_a_store_that_is_not_duckdb_is_refused_and_left_alone(
    tmp_path: Path, corpus_file: Path
) -> None:
    db = tmp_path / "notes.duckdb"
    db.write_bytes(b"my notes, not a database\n" * 50)
    content = db.read_bytes()
    for name, (copy, result) in refusals(db, tmp_path).items():
        assert_refused(result, copy, None)
        assert "not a DuckDB file" in result.stderr
        assert len(result.stderr.splitlines()) == 1, (name, result.stderr)
        assert copy.read_bytes() == content


def test_a_store_with_a_newer_schema_is_refused_and_left_unchanged(
    tmp_path: Path, store: Path, corpus_file: Path
) -> None:
    con = duckdb.connect(str(store))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    before = snapshot(store)
    for name, (copy, result) in refusals(store, tmp_path).items():
        assert_refused(result, copy, None)
        assert "newer" in result.stderr
        assert len(result.stderr.splitlines()) == 1, (name, result.stderr)
        assert snapshot(copy) == before


def test_exporting_an_unknown_corpus_is_a_one_line_error(
    store: Path, tmp_path: Path, editlens
) -> None:
    result = editlens("export", "--corpus", "nope", "--db", store, cwd=tmp_path)
    assert result.returncode != 0
    assert "'nope'" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_a_gzip_corpus_ingests_through_the_cli(
    tmp_path: Path, editlens, succeeded, export_jsonl
) -> None:
    path = tmp_path / "packed.xml.gz"
    path.write_bytes(gzip.compress(XML.encode()))
    db = tmp_path / "store.duckdb"
    succeeded(editlens("ingest", path, "--db", db, cwd=tmp_path))
    assert len(export_jsonl(db, tmp_path, "packed")) == 5


# -- arguments are checked before any work, and every failure is one line -----------------------

USAGE_ERRORS = {
    "evaluate --limit 0": (["evaluate", "--corpus", "small", "--limit", "0"], "--limit"),
    "evaluate --limit -1": (["evaluate", "--corpus", "small", "--limit", "-1"], "--limit"),
    "evaluate --batch-size 0": (["evaluate", "--corpus", "small", "--batch-size", "0"], "--batch-size"),
    "evaluate --ig-steps 0": (["evaluate", "--corpus", "small", "--ig-steps", "0"], "--ig-steps"),
    "evaluate --max-length 4": (["evaluate", "--corpus", "small", "--max-length", "4"], "--max-length"),
    "evaluate --split nope": (["evaluate", "--corpus", "small", "--split", "nope"], "--split"),
    "ingest --kind nope": (["ingest", "small.xml", "--kind", "nope"], "--kind"),
    "synth --sentences -3": (["synth", "--out", "x.xml", "--sentences", "-3"], "--sentences"),
    "report --metric nope": (["report", "--metric", "nope"], "--metric"),
    "train --epochs 0": (["train", "--corpus", "small", "--epochs", "0"], "--epochs"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_a_bad_option_value_is_one_line_with_exit_2_before_any_work(
    case: str, store: Path, tmp_path: Path, editlens, one_line_error
) -> None:
    args, option = USAGE_ERRORS[case]
    before = snapshot(store)
    result = editlens(*args, cwd=tmp_path, env={"EDITLENS_DB": str(store)})
    line = one_line_error(result, option, code=2)
    assert "--help" in line
    assert snapshot(store) == before
    assert not (tmp_path / "x.xml").exists()


@pytest.mark.parametrize(
    ("methods", "said"),
    [
        (["--methods", ","], "no method given"),
        (["--methods", "attention", "--methods", "nonsense"], "unknown method nonsense"),
        (["--methods", "attention,nonsense"], "unknown method nonsense"),
    ],
)
def test_methods_are_checked_whether_comma_separated_or_repeated(
    methods: list[str], said: str, store: Path, tmp_path: Path, editlens, one_line_error
) -> None:
    result = editlens("evaluate", "--corpus", "small", *methods, "--db", store, cwd=tmp_path)
    one_line_error(result, said)


HOSTILE = "[/bold] [link=http://x]y[/link]"


def test_markup_in_a_corpus_name_is_printed_as_text(
    tmp_path: Path, corpus_file: Path, editlens, succeeded, one_line_error
) -> None:
    db = tmp_path / "store.duckdb"
    ingested = succeeded(editlens("ingest", corpus_file, "--corpus", HOSTILE, "--db", db))
    assert "[/bold]" in ingested.stdout and "[link=http://x]y[/link]" in ingested.stdout
    info = succeeded(editlens("info", "--db", db)).stdout
    assert "[/bold]" in info and "[link=http://x]" in info
    refused = editlens("export", "--corpus", f"{HOSTILE}!", "--db", db)
    assert HOSTILE in one_line_error(refused, "is not in")


def test_markup_in_an_error_message_is_printed_as_text(
    tmp_path: Path, editlens, one_line_error
) -> None:
    missing = tmp_path / "[bold]notes[/bold].xml"
    line = one_line_error(editlens("ingest", missing, "--db", tmp_path / "s.duckdb"))
    assert "[bold]notes[/bold].xml" in line


def test_ctrl_c_prints_the_one_line_message_and_exits_130(tmp_path: Path) -> None:
    """An export blocked on a full pipe (nobody reads it) is interrupted mid-command."""
    db = tmp_path / "store.duckdb"
    big = "".join(
        f'<sentence sid="{i}.1">Sentence {i} is<del>,</del> here.</sentence>' for i in range(3000)
    )
    (tmp_path / "big.xml").write_text(f"<xml>{big}</xml>", encoding="utf-8")
    with Store(db) as store:
        ingest(store, tmp_path / "big.xml")
    process = subprocess.Popen(
        [EDITLENS, "export", "--corpus", "big", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell's background job (`cmd &`) starts with SIGINT ignored,
        # and a program rightly keeps ignoring it then
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    process.stdout.readline()  # the command is running: it has written a record
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.splitlines() == [
        "interrupted: nothing half-written was kept; rerun the command to resume"
    ]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (OSError(28, "No space left on device", "out.xml"), "out.xml: No space left on device"),
        (ValueError("limit must be positive\ndetails"), "limit must be positive"),
        (duckdb.IOException("IO Error: the disk is full\nat ..."), "IO Error: the disk is full"),
        (
            SafetensorError("Error while deserializing header: HeaderTooLarge"),
            "Error while deserializing header: HeaderTooLarge",
        ),
    ],
)
def test_every_error_family_the_engine_meets_is_one_line_with_exit_1(
    error: Exception, line: str, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("engine.synth.write_aesw", fail)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["synth", "--out", str(tmp_path / "out.xml")])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {line}"]


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args, **kwargs):
        raise TypeError("a bug, not a user's mistake")

    monkeypatch.setattr("engine.synth.write_aesw", broken)
    with pytest.raises(TypeError):
        cli.main(["synth", "--out", str(tmp_path / "out.xml")])


def test_train_first_trains_at_the_evaluated_max_length_with_the_given_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    monkeypatch.setattr(
        pipeline,
        "train_then_evaluate",
        lambda db, spec, training, *a, **k: calls.append((spec, training)) or (None, None),
    )
    argv = ["evaluate", "--corpus", "c", "--model", "m", "--train-first", "--max-length", "64",
            "--epochs", "2", "--lr", "1e-4", "--train-batch-size", "8", "--train-seed", "7",
            "--no-merge"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    ((spec, training),) = calls
    assert (spec.corpus, spec.model, spec.max_length) == ("c", "m", 64)
    assert training == TrainSpec(
        corpus="c", model="m", max_length=64, epochs=2, lr=1e-4, batch_size=8, seed=7
    )


def test_train_first_refuses_a_bad_evaluation_before_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    trained = []
    monkeypatch.setattr("engine.train.train", lambda *a, **k: trained.append(a))
    spec = EvalSpec(corpus="c", ig_steps=0)
    with pytest.raises(EditlensError, match="integrated-gradients steps"):
        pipeline.train_then_evaluate(tmp_path / "s.duckdb", spec, pipeline.training_for(spec))
    assert trained == []


def test_without_options_train_first_uses_every_trainspec_default() -> None:
    training = pipeline.training_for(EvalSpec(corpus="c"))
    assert training == TrainSpec(corpus="c", max_length=default(EvalSpec, "max_length"))


@pytest.mark.parametrize(
    ("command", "spec"),
    [("train", TrainSpec), ("evaluate", EvalSpec), ("study", StudySpec), ("demo", DemoSpec)],
)
def test_each_option_default_is_its_specs_default(command: str, spec: type) -> None:
    """Declared once: every option named like a spec field shows that field's default."""
    import typer.main

    click_command = typer.main.get_command(cli.app).commands[command]  # type: ignore[attr-defined]
    fields = {
        f.name: f.default for f in dataclasses.fields(spec) if f.default is not dataclasses.MISSING
    }
    skip = {"out", "methods", "layers"}  # paths; lists whose absence means the spec's default
    shared = [p for p in click_command.params if p.name in fields and p.name not in skip]
    assert shared
    for param in shared:
        expected = fields[param.name]
        if isinstance(expected, tuple):
            expected = [str(x) for x in expected]
        assert param.default == expected or param.default == fields[param.name], param.name


def test_evaluate_passes_word_aggregation_and_the_explained_class_to_its_spec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    specs: list[EvalSpec] = []

    def evaluate(db, spec, reporter, *, merge=True):
        specs.append(spec)
        raise EditlensError("stop here")

    monkeypatch.setattr(pipeline, "evaluate", evaluate)
    args = ["evaluate", "--corpus", "c", "--aggregation", "max", "--explain", "pred"]
    result = CliRunner().invoke(cli.app, [*args, "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 1
    assert [(s.aggregation, s.explain) for s in specs] == [("max", "pred")]


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("0.0.0.0", True),
        ("example.org", True),
    ],
)
def test_serve_warns_loudly_when_it_listens_beyond_this_machine(
    monkeypatch: pytest.MonkeyPatch, host: str, warned: bool
) -> None:
    from typer.testing import CliRunner

    served: list[str] = []
    monkeypatch.setattr("tui.serve.serve", lambda db, host, port: served.append(host))
    result = CliRunner().invoke(cli.app, ["serve", "--host", host])
    assert result.exit_code == 0 and served == [host]
    assert ("warning: serving on" in result.output) is warned


def test_the_readme_commands_table_names_every_command_and_only_real_options() -> None:
    import re

    import typer.main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n\n", 2)[1]
    commands = typer.main.get_command(cli.app).commands  # type: ignore[attr-defined]
    listed = set()
    for usage in re.findall(r"^\| `(editlens [^`]*)`(?: / `(editlens [^`]*)`)? \|", table, re.M):
        for text in filter(None, usage):
            name = text.split()[1]
            listed.add(name)
            options = {o for p in commands[name].params for o in (*p.opts, *p.secondary_opts)}
            for option in re.findall(r"--[a-z-]+", text):
                assert option in options, f"README: `editlens {name}` has no {option}"
    assert listed == set(commands)


def test_the_demo_fine_tunes_then_evaluates_it_and_two_baselines_with_the_demo_settings(
    demo_calls: list[object], tmp_path: Path
) -> None:
    """The flow and its specs (so its run ids, and so its report) without a model."""
    from engine.models import DEFAULT_MODEL, RANDOM_MODEL

    result = pipeline.demo(tmp_path / "demo.duckdb", DemoSpec())
    assert result.run_ids == ["eval-2", "eval-3", "eval-4"]
    trained, *evaluated = demo_calls
    assert trained == TrainSpec(corpus="synthetic", model=DEFAULT_MODEL, epochs=2, lr=1e-4)
    assert evaluated == [
        EvalSpec(corpus="synthetic", model=model, ig_steps=8)
        for model in (str(tmp_path / "best"), DEFAULT_MODEL, RANDOM_MODEL)
    ]
    with Store(tmp_path / "demo.duckdb", read_only=True) as store:
        assert [c.name for c in store.corpora()] == ["synthetic"]

"""The engine's commands through the real `editlens` executable: data on stdout, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.highlight import MARK

pytestmark = pytest.mark.slow

REPORT_KEYS = {
    "run", "model", "corpus", "method", "layer", "population", "n", "top3", "exact", "hit1",
    "jaccard", "jaccard50", "token_f1", "auprc", "comprehensiveness", "sufficiency",
    "accuracy", "precision", "recall", "f1",
}  # fmt: skip
MARKUP = "We cite [link=http://x]y[/link] and [/bold] here."  # no edit: not scorable
XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<xml><p pid="1">
<sentence sid="1.0">We show that the <del>the </del>bound holds for _MATH_.</sentence>
<sentence sid="1.1">The <del>reslut</del><ins>result</ins> follows from _REF_.</sentence>
<sentence sid="1.2">The method converges quickly in practice.</sentence>
<sentence sid="1.3">Our model improves on _CITE_ for large _MATH_.</sentence>
<sentence sid="1.4">This proof is<del>,</del> short.</sentence>
<sentence sid="1.5">Each sample is drawn at random.</sentence>
<sentence sid="[/bold]">{MARKUP}</sentence>
</p></xml>
"""
QUICK = ("--methods", "attention,random", "--layers", "6", "--no-faithfulness")


@pytest.fixture(scope="module")
def store(tmp_path_factory, editlens, succeeded) -> tuple[Path, str]:
    """A store with the tiny corpus ingested and evaluated once (attention and random)."""
    folder = tmp_path_factory.mktemp("cli")
    db = folder / "store.duckdb"
    corpus = folder / "tiny.xml"
    corpus.write_text(XML)
    env = {"EDITLENS_DB": str(db)}
    succeeded(editlens("ingest", corpus, "--corpus", "tiny", "--split", "test", env=env))
    evaluated = succeeded(editlens("evaluate", "--corpus", "tiny", *QUICK, env=env))
    assert "run eval-minilm-tiny-test-" in evaluated.stderr
    runs = json.loads(succeeded(editlens("report", "--json", env=env)).stdout)
    return db, runs[0]["run"]


def test_report_json_lists_every_figure_of_the_run(store, editlens, succeeded) -> None:
    db, run_id = store
    rows = json.loads(succeeded(editlens("report", "--json", "--run", run_id, "--db", db)).stdout)
    assert {(r["method"], r["layer"], r["population"]) for r in rows} >= {
        ("attention", 6, "all"),
        ("random", 0, "all"),
    }
    for row in rows:
        assert set(row) >= REPORT_KEYS
        assert row["run"] == run_id and row["corpus"] == "tiny" and row["model"] == "minilm"
    all_rows = [r for r in rows if r["population"] == "all"]
    assert {r["n"] for r in all_rows} == {3}  # three sentences have a scorable rationale


def test_show_prints_the_sentence_with_its_rationale_marked(store, editlens, succeeded) -> None:
    db, run_id = store
    shown = succeeded(editlens("show", "1.1", "--run", run_id, "--db", db)).stdout
    assert f"{MARK}reslut" in shown
    assert "follows" in shown and "_REF_" in shown


def test_show_prints_markup_in_an_id_and_a_sentence_as_text(store, editlens, succeeded) -> None:
    db, run_id = store
    shown = succeeded(editlens("show", "[/bold]", "--run", run_id, "--db", db)).stdout
    assert shown.startswith("[/bold] · minilm")
    sentence = shown.splitlines()[1]  # words apart, each maybe with its rank mark
    assert sentence.startswith("We cite [ link = http") and "[ /" in sentence


def test_methods_given_repeated_are_the_same_evaluation_as_comma_separated(
    store, editlens, succeeded
) -> None:
    db, run_id = store
    repeated = ["--methods", "attention", "--methods", "random", *QUICK[2:]]
    again = succeeded(editlens("evaluate", "--corpus", "tiny", *repeated, "--db", db))
    assert f"run {run_id}:" in again.stderr


def test_an_unknown_model_is_a_one_line_error(store, editlens, one_line_error) -> None:
    db, _ = store
    result = editlens("evaluate", "--corpus", "tiny", "--model", "no-such-model", "--db", db)
    one_line_error(result, "no-such-model")


def test_a_layer_out_of_range_is_a_one_line_error(store, editlens, one_line_error) -> None:
    db, _ = store
    result = editlens(
        "evaluate", "--corpus", "tiny", "--methods", "random", "--layers", "99", "--db", db
    )
    one_line_error(result, "99")


def test_a_max_length_past_the_models_positions_is_a_one_line_error(
    store, editlens, one_line_error
) -> None:
    db, _ = store
    result = editlens("evaluate", "--corpus", "tiny", *QUICK, "--max-length", "1000", "--db", db)
    one_line_error(result, "--max-length 1000", "at most 512")


@pytest.mark.parametrize(
    "args", [["report", "--run", "eval-nope"], ["show", "1.1", "--run", "eval-nope"]]
)
def test_a_run_that_does_not_exist_is_a_one_line_error(
    store, args, editlens, one_line_error
) -> None:
    db, _ = store
    one_line_error(editlens(*args, "--db", db), "eval-nope")

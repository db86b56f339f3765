"""The engine's commands through the real `editlens` executable: data on stdout, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.highlight import MARK

pytestmark = pytest.mark.slow

EDITLENS = str(Path(sys.executable).parent / "editlens")
REPORT_KEYS = {
    "run", "model", "corpus", "method", "layer", "population", "n", "top3", "exact", "hit1",
    "jaccard", "jaccard50", "token_f1", "auprc", "comprehensiveness", "sufficiency",
    "accuracy", "precision", "recall", "f1",
}  # fmt: skip
XML = """<?xml version="1.0" encoding="UTF-8"?>
<xml><p pid="1">
<sentence sid="1.0">We show that the <del>the </del>bound holds for _MATH_.</sentence>
<sentence sid="1.1">The <del>reslut</del><ins>result</ins> follows from _REF_.</sentence>
<sentence sid="1.2">The method converges quickly in practice.</sentence>
<sentence sid="1.3">Our model improves on _CITE_ for large _MATH_.</sentence>
<sentence sid="1.4">This proof is<del>,</del> short.</sentence>
<sentence sid="1.5">Each sample is drawn at random.</sentence>
</p></xml>
"""


def editlens(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDITLENS_DB": str(db), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [EDITLENS, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """A store with the tiny corpus ingested and evaluated once (attention and random)."""
    folder = tmp_path_factory.mktemp("cli")
    db = folder / "store.duckdb"
    corpus = folder / "tiny.xml"
    corpus.write_text(XML)
    ok(editlens("ingest", str(corpus), "--corpus", "tiny", "--split", "test", db=db))
    evaluated = ok(
        editlens(
            "evaluate",
            "--corpus",
            "tiny",
            "--methods",
            "attention,random",
            "--layers",
            "6",
            "--no-faithfulness",
            db=db,
        )
    )
    assert "run eval-minilm-tiny-test-" in evaluated.stderr
    runs = json.loads(ok(editlens("report", "--json", db=db)).stdout)
    return db, runs[0]["run"]


def test_report_json_lists_every_figure_of_the_run(store) -> None:
    db, run_id = store
    rows = json.loads(ok(editlens("report", "--json", "--run", run_id, db=db)).stdout)
    assert {(r["method"], r["layer"], r["population"]) for r in rows} >= {
        ("attention", 6, "all"),
        ("random", 0, "all"),
    }
    for row in rows:
        assert set(row) >= REPORT_KEYS
        assert row["run"] == run_id and row["corpus"] == "tiny" and row["model"] == "minilm"
    all_rows = [r for r in rows if r["population"] == "all"]
    assert {r["n"] for r in all_rows} == {3}  # three sentences have a scorable rationale


def test_show_prints_the_sentence_with_its_rationale_marked(store) -> None:
    db, run_id = store
    shown = ok(editlens("show", "1.1", "--run", run_id, db=db)).stdout
    assert f"{MARK}reslut" in shown
    assert "follows" in shown and "_REF_" in shown


def test_an_unknown_model_is_a_one_line_error(store) -> None:
    db, _ = store
    result = editlens("evaluate", "--corpus", "tiny", "--model", "no-such-model", db=db)
    assert_one_line_error(result, "no-such-model")


def test_a_layer_out_of_range_is_a_one_line_error(store) -> None:
    db, _ = store
    result = editlens(
        "evaluate", "--corpus", "tiny", "--methods", "random", "--layers", "99", db=db
    )
    assert_one_line_error(result, "99")


@pytest.mark.parametrize(
    "args", [["report", "--run", "eval-nope"], ["show", "1.1", "--run", "eval-nope"]]
)
def test_a_run_that_does_not_exist_is_a_one_line_error(store, args) -> None:
    db, _ = store
    assert_one_line_error(editlens(*args, db=db), "eval-nope")

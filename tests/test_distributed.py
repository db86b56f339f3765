"""`editlens train` and `editlens evaluate` under torchrun with 2 CPU processes (gloo, through
Accelerate): the same training as one process with the same global batch, and one writer; the
same evaluation as one process, example for example, published once."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from train_fixture import corpus, make_store, tiny_model

from engine.checkpoints import LAST
from engine.evaluate import EvalSpec, evaluate
from engine.store import Store, staging_dir
from engine.train import STAGING, TrainSpec, train
from engine.vocabulary import METHOD_NAMES

SETTINGS = {"epochs": 2, "batch_size": 8, "max_length": 32, "lr": 1e-3}
EDITLENS = Path(sys.executable).parent / "editlens"


def torchrun(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    environment = {k: v for k, v in os.environ.items() if k != "EDITLENS_DB"}
    return subprocess.run(
        [*command, "--nproc_per_node", "2", str(EDITLENS), *map(str, args)],
        cwd=cwd,
        env=environment | {"COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def weights(checkpoint: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "model.safetensors"))


@pytest.mark.slow
def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path: Path) -> None:
    # Dropout off: each rank draws its own masks, which no single process can reproduce.
    model = tiny_model(tmp_path / "tiny-bert", dropout=0.0)
    examples = corpus(train=60, dev=20)  # 60 / 8: the last batch (4) splits 2 + 2
    one_db = make_store(tmp_path / "one" / "store.duckdb", "tiny", examples)
    spec = TrainSpec(corpus="tiny", model=str(model), out=tmp_path / "one" / "ckpt", **SETTINGS)
    one = train(one_db, spec)

    two_db = make_store(tmp_path / "two" / "store.duckdb", "tiny", examples)
    options = [f"--{key.replace('_', '-')}={value}" for key, value in SETTINGS.items()]
    out = tmp_path / "two" / "ckpt"
    result = torchrun(
        "train", "--corpus=tiny", f"--model={model}", *options, f"--out={out}",
        f"--db={two_db}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    with Store(two_db, read_only=True) as store:
        runs = store.runs(kind="train")
    assert [run.id for run in runs] == [one.run_id]  # one run, published once, same identity
    run = runs[0]
    assert run.config["processes"] == 2 and run.config["device"] == "cpu"
    for mine, theirs in zip(run.metrics["history"], one.history, strict=True):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert mine["dev_loss"] == pytest.approx(theirs["dev_loss"], rel=1e-5)
        assert mine["dev_accuracy"] == theirs["dev_accuracy"]
    two_weights, one_weights = weights(out / "best"), weights(one.checkpoint)
    assert two_weights.keys() == one_weights.keys()
    for name, tensor in two_weights.items():
        assert (tensor - one_weights[name]).abs().max() < 1e-5, name
    # the weights moved, so agreeing is not trivially true
    assert (
        weights(model)["classifier.weight"] - one_weights["classifier.weight"]
    ).abs().max() > 1e-3
    # rank 0 alone wrote: one state, no leftovers of a second writer
    assert sorted(p.name for p in out.iterdir()) == ["best", LAST]
    assert not (out / STAGING).exists()


@pytest.mark.slow
def test_two_processes_evaluate_as_one_example_for_example_and_publish_once(
    tmp_path: Path,
) -> None:
    import duckdb

    model = tiny_model(tmp_path / "tiny-bert", dropout=0.0)
    # 1,100 examples: three chunks of CHUNK_ROWS (512, 512, 76), so rank 0 takes two, rank 1 one
    examples = corpus(train=1000, dev=100)
    spec = EvalSpec(
        corpus="tiny", model=str(model), split="all", methods=METHOD_NAMES, max_length=32,
        ig_steps=2, device="cpu",
    )  # fmt: skip
    one_db = make_store(tmp_path / "one" / "store.duckdb", "tiny", examples)
    one = evaluate(one_db, spec)

    two_db = make_store(tmp_path / "two" / "store.duckdb", "tiny", examples)
    result = torchrun(
        "evaluate", "--corpus=tiny", f"--model={model}", "--split=all", "--max-length=32",
        "--ig-steps=2", "--device=cpu", f"--db={two_db}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count(f"run {one.run_id}: 1,100 examples") == 1  # rank 0 reports
    # and prints the report, once: one table per population
    assert result.stdout.count("at the last layer: all scorable") == 1, result.stdout

    with Store(two_db, read_only=True) as store:
        runs = store.runs(kind="evaluate")
    assert [run.id for run in runs] == [one.run_id]
    assert (runs[0].config["processes"], runs[0].config["device"]) == (2, "cpu")
    assert runs[0].metrics == dataclasses.asdict(one.classification)
    tables = ("predictions", "scores", "heads", "outcomes", "summaries", "slices")
    for table in tables:
        query = f"FROM {table} WHERE run = ? ORDER BY ALL"
        with duckdb.connect(str(one_db), read_only=True) as con:
            expected = con.execute(query, [one.run_id]).fetchall()
        with duckdb.connect(str(two_db), read_only=True) as con:
            assert con.execute(query, [one.run_id]).fetchall() == expected, table
        assert expected, table
    assert not list(staging_dir(two_db).iterdir())  # staging store and both shards gone


@pytest.mark.slow
def test_evaluate_train_first_under_two_processes_trains_then_evaluates_as_one(
    tmp_path: Path,
) -> None:
    """Both steps in one launch: data-parallel training, then the sharded evaluation of its
    best checkpoint; each run published once, as one process publishes them. The 20 dev
    examples are one chunk, so rank 1 has nothing to evaluate (it used to fail scoring its
    empty shard)."""
    import duckdb

    model = tiny_model(tmp_path / "tiny-bert", dropout=0.0)
    examples = corpus(train=60, dev=20)
    options = [
        "evaluate", "--corpus=tiny", f"--model={model}", "--split=dev", "--max-length=32",
        "--methods=attention", "--train-first", "--epochs=2", "--lr=1e-3",
        "--train-batch-size=8", "--device=cpu",
    ]  # fmt: skip
    one_db = make_store(tmp_path / "one" / "store.duckdb", "tiny", examples)
    alone = subprocess.run(
        [str(EDITLENS), *options, f"--db={one_db}"], capture_output=True, text=True, check=False
    )
    assert alone.returncode == 0, alone.stderr[-3000:]
    two_db = make_store(tmp_path / "two" / "store.duckdb", "tiny", examples)
    result = torchrun(*options, f"--db={two_db}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    def published(db: Path) -> tuple[list, list, list[tuple[str, float]]]:
        with Store(db, read_only=True) as store:
            trained, evaluated = store.runs(kind="train"), store.runs(kind="evaluate")
        with duckdb.connect(str(db), read_only=True) as con:
            probs = con.execute("SELECT example, prob FROM predictions ORDER BY example").fetchall()
        return trained, evaluated, probs

    one_trained, one_evaluated, one_probs = published(one_db)
    trained, evaluated, probs = published(two_db)
    assert [run.id for run in trained] == [run.id for run in one_trained]  # one each
    assert len(evaluated) == len(one_evaluated) == 1
    assert evaluated[0].checkpoint == str(two_db.parent / "checkpoints" / trained[0].id / "best")
    assert evaluated[0].config["processes"] == 2
    assert trained[0].metrics["history"][-1]["dev_loss"] == pytest.approx(
        one_trained[0].metrics["history"][-1]["dev_loss"], rel=1e-5
    )
    assert [example for example, _ in probs] == [example for example, _ in one_probs]
    assert len(probs) == 20
    for (_, mine), (_, theirs) in zip(probs, one_probs, strict=True):
        assert mine == pytest.approx(theirs, abs=1e-5)

"""An evaluation split across ranks (engine.evaluate under several processes), in one process:
each rank is a thread with its own model, and the process group's barrier a thread barrier, so
the sharding, the shard stores, the single publish and the resume run as under torchrun, at a
thread's cost. tests/test_distributed.py runs the real thing (torchrun, gloo) once."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import torch
from train_fixture import corpus, make_store, tiny_model

import engine.evaluate as evaluate_module
from engine import models
from engine.device import Processes
from engine.evaluate import EvalResult, EvalSpec, evaluate
from engine.evaluator import Evaluator
from engine.models import LoadedModel
from engine.store import staging_dir
from engine.vocabulary import METHOD_NAMES

pytestmark = pytest.mark.slow  # loads a (tiny) model per rank and evaluates every method

CHUNK = 8  # 64 examples: 8 chunks, so each of 2 ranks takes 4
COMPARED = ("predictions", "scores", "heads", "outcomes", "summaries", "slices")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny-bert", dropout=0.0)


@pytest.fixture(scope="module")
def spec(model: Path) -> EvalSpec:
    return EvalSpec(
        corpus="tiny", model=str(model), split="all", methods=METHOD_NAMES, max_length=32,
        ig_steps=2, batch_size=4, device="cpu",
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "store.duckdb", "tiny", corpus(48, 16))


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(evaluate_module, "CHUNK_ROWS", CHUNK)


@pytest.fixture(scope="module")
def one_process(store: Path, spec: EvalSpec, tmp_path_factory) -> tuple[Path, EvalResult]:
    """The reference: the same evaluation in one process, as without a launcher."""
    db = tmp_path_factory.mktemp("one") / "store.duckdb"
    shutil.copy(store, db)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "CHUNK_ROWS", CHUNK)
        return db, evaluate(db, spec)


def copy_of(store: Path, folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(store, folder / "store.duckdb")
    return folder / "store.duckdb"


def run_tables(db: Path, run_id: str) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            name: con.execute(f"FROM {name} WHERE run = ? ORDER BY ALL", [run_id]).fetchall()
            for name in COMPARED
        }


def runs(db: Path) -> list[tuple[str, dict, dict]]:
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute("SELECT id, metrics, config FROM runs").fetchall()
    return [(run, json.loads(metrics), json.loads(config)) for run, metrics, config in found]


def as_ranks(
    monkeypatch, db: Path, spec: EvalSpec, *, world: int = 2, fail: int | None = None
) -> dict[int, EvalResult | BaseException]:
    """Run ``evaluate`` as ``world`` ranks at once; rank ``fail`` dies in its second chunk (its
    barrier breaks, as a killed rank ends the others' wait under torchrun)."""
    barrier = threading.Barrier(world, timeout=120)
    processes = {
        f"rank{rank}": Processes(
            rank, world, torch.device("cpu"), SimpleNamespace(wait_for_everyone=barrier.wait)
        )
        for rank in range(world)
    }
    monkeypatch.setattr(
        evaluate_module, "start_processes", lambda _: processes[threading.current_thread().name]
    )

    class Dying(Evaluator):
        chunks = 0

        def process_prepared(self, examples, on_batch=None):
            self.chunks += 1
            if threading.current_thread().name == f"rank{fail}" and self.chunks == 2:
                raise RuntimeError("killed")
            return super().process_prepared(examples, on_batch)

    monkeypatch.setattr(evaluate_module, "Evaluator", Dying)
    # One load at a time: a load seeds torch's global generator and draws the placeholders'
    # embeddings from it, which ranks in threads (unlike processes) share.
    loading = threading.Lock()

    def load_model(name: str, *, seed: int = 0) -> LoadedModel:
        with loading:
            return models.load_model(name, seed=seed)

    monkeypatch.setattr(evaluate_module, "load_model", load_model)
    results: dict[int, EvalResult | BaseException] = {}

    def rank(number: int) -> None:
        try:
            results[number] = evaluate(db, spec)
        except BaseException as error:
            results[number] = error
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,), name=f"rank{r}") for r in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_ranks_publish_one_run_equal_to_one_process_example_for_example(
    monkeypatch, store, spec, one_process, tmp_path
) -> None:
    reference_db, reference = one_process
    db = copy_of(store, tmp_path / "two")
    results = as_ranks(monkeypatch, db, spec)

    first, second = results[0], results[1]
    assert isinstance(first, EvalResult) and isinstance(second, EvalResult)
    assert first.run_id == second.run_id == reference.run_id
    assert (first.examples, first.merged, first.classification) == (
        64, True, reference.classification,
    )  # fmt: skip
    assert (second.rank, second.examples, second.merged) == (1, 32, False)  # its own shard
    tables = run_tables(db, reference.run_id)
    assert all(tables.values())
    assert tables == run_tables(reference_db, reference.run_id)
    ((_, metrics, config),) = runs(db)
    ((_, reference_metrics, reference_config),) = runs(reference_db)
    assert metrics == reference_metrics
    assert (config["processes"], reference_config["processes"]) == (2, 1)
    assert not list(staging_dir(db).iterdir())  # the staging store and both shards are gone


def test_a_killed_rank_leaves_nothing_visible_and_a_rerun_resumes_every_shard(
    monkeypatch, store, spec, one_process, tmp_path
) -> None:
    reference_db, reference = one_process
    db = copy_of(store, tmp_path / "killed")
    results = as_ranks(monkeypatch, db, spec, fail=1)
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[0], threading.BrokenBarrierError)  # rank 0 never publishes
    assert runs(db) == []
    shards = sorted(p.name for p in staging_dir(db).glob("*.rank*.duckdb"))
    assert shards == [f"{reference.run_id}.rank0.duckdb", f"{reference.run_id}.rank1.duckdb"]

    rerun = as_ranks(monkeypatch, db, spec)
    result = rerun[0]
    assert isinstance(result, EvalResult) and isinstance(rerun[1], EvalResult)
    # rank 0's four chunks and rank 1's first were kept: only the other three are computed
    assert result.resumed == 5 * CHUNK
    assert rerun[1].examples == CHUNK  # rank 1's share of the three
    assert run_tables(db, reference.run_id) == run_tables(reference_db, reference.run_id)
    assert not list(staging_dir(db).iterdir())


def test_one_process_resumes_what_a_killed_two_process_run_left(
    monkeypatch, store, spec, one_process, tmp_path
) -> None:
    reference_db, reference = one_process
    db = copy_of(store, tmp_path / "fewer")
    as_ranks(monkeypatch, db, spec, fail=0)  # rank 0 dies in its second chunk
    monkeypatch.undo()  # a plain process: no launcher
    monkeypatch.setattr(evaluate_module, "CHUNK_ROWS", CHUNK)
    result = evaluate(db, spec)
    assert result.resumed == 5 * CHUNK  # rank 0's first chunk and rank 1's four
    assert run_tables(db, reference.run_id) == run_tables(reference_db, reference.run_id)

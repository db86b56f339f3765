"""Fine-tuning on a tiny corpus with the real model: checkpoints, determinism, resume, refusals."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from train_fixture import corpus, make_store, sentence

from engine.checkpoints import BEST, LAST, STATE_FILE, atomic_dir, recover
from engine.corpus import EDITED_SUFFIX, PLACEHOLDERS, Example, pair_key
from engine.errors import EditlensError
from engine.store import Store
from engine.train import (
    TrainProgress,
    TrainResult,
    TrainSpec,
    _chunks,
    _improves,
    _Source,
    comparable,
    run_id_for,
    train,
)


def train_runs(db: Path) -> list[str]:
    with Store(db, read_only=True) as store:
        return [run.id for run in store.runs(kind="train")]


TINY = TrainSpec(corpus="tiny", epochs=2, batch_size=16, max_length=32, lr=1e-4, patience=5)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult]:
    """One uninterrupted two-epoch run, shared by the tests that compare against it."""
    root = tmp_path_factory.mktemp("reference")
    db = make_store(root / "store.duckdb", "tiny", corpus())
    return db, train(db, dataclasses.replace(TINY, out=root / "ckpt", keep_epochs=True))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store.duckdb", "tiny", corpus())


@pytest.mark.slow
def test_a_diverged_step_stops_training_before_the_optimizer_applies_it(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    import torch.nn.functional as F
    from train_fixture import tiny_model

    applied: list[int] = []
    real_step = torch.optim.AdamW.step

    def counted_step(self, *args, **kwargs):
        applied.append(1)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted_step)
    monkeypatch.setattr(
        F, "cross_entropy", lambda *a, **k: torch.tensor(math.nan, requires_grad=True)
    )
    spec = dataclasses.replace(TINY, model=str(tiny_model(tmp_path / "tiny")), out=tmp_path / "o")
    with pytest.raises(EditlensError, match="diverged"):
        train(db, spec)
    assert applied == []


# --- the checkpoint ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_best_checkpoint_is_safetensors_and_nothing_pickled(
    reference: tuple[Path, TrainResult],
) -> None:
    _, result = reference
    files = {p.name for p in result.checkpoint.iterdir()}
    assert "model.safetensors" in files and "config.json" in files
    everything = [p.name for p in result.checkpoint.parent.rglob("*") if p.is_file()]
    assert not [n for n in everything if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))]
    assert (result.checkpoint.parent / LAST / "optimizer.safetensors").is_file()


@pytest.mark.slow
def test_the_best_checkpoint_loads_with_its_placeholder_tokens(
    reference: tuple[Path, TrainResult],
) -> None:
    from engine.models import load_model

    _, result = reference
    loaded = load_model(str(result.checkpoint))
    assert loaded.meta["model"] == "minilm" and loaded.meta["corpus"] == "tiny"
    assert loaded.meta["epoch"] == result.best_epoch
    for placeholder in PLACEHOLDERS:
        ids = loaded.tokenizer(placeholder, add_special_tokens=False)["input_ids"]
        assert ids == [loaded.tokenizer.convert_tokens_to_ids(placeholder)]
    assert loaded.model.get_input_embeddings().num_embeddings == len(loaded.tokenizer)


@pytest.mark.slow
def test_every_epoch_is_kept_and_the_best_is_the_kept_epoch_it_names(
    reference: tuple[Path, TrainResult],
) -> None:
    from safetensors.torch import load_file

    from engine.models import load_model

    _, result = reference
    assert sorted(result.epoch_checkpoints) == [1, 2]
    for epoch, path in result.epoch_checkpoints.items():
        assert load_model(str(path)).meta["epoch"] == epoch
    best = load_file(str(result.checkpoint / "model.safetensors"))
    kept = load_file(str(result.epoch_checkpoints[result.best_epoch] / "model.safetensors"))
    other = load_file(str(result.epoch_checkpoints[3 - result.best_epoch] / "model.safetensors"))
    assert best.keys() == kept.keys()
    assert all(best[name].equal(kept[name]) for name in best)
    assert not all(best[name].equal(other[name]) for name in best)


def test_keeping_epochs_does_not_change_the_run() -> None:
    assert run_id_for(dataclasses.replace(TINY, keep_epochs=True)) == run_id_for(TINY)


@pytest.mark.slow
def test_the_history_has_losses_and_dev_figures_for_every_epoch(
    reference: tuple[Path, TrainResult],
) -> None:
    _, result = reference
    assert [row["epoch"] for row in result.history] == [1, 2]
    for row in result.history:
        assert {"train_loss", "dev_loss", "dev_accuracy", "dev_f1", "examples_per_s"} <= row.keys()
        assert row["dev_n"] == 16 and row["examples_per_s"] > 0
    assert result.resumed_from_epoch == 0
    best = min(result.history, key=lambda row: row["dev_loss"])
    assert result.best_epoch == best["epoch"]


# --- determinism and resume ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_same_spec_gives_the_same_losses(
    reference: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    db, first = reference
    second = train(db, dataclasses.replace(TINY, out=tmp_path / "again"))
    assert second.run_id == first.run_id
    assert comparable(second.history) == comparable(first.history)


def interrupt_in_epoch(epoch: int) -> Callable[[TrainProgress], None]:
    def on_progress(progress: TrainProgress) -> None:
        if progress.epoch == epoch and progress.step == 2:
            raise KeyboardInterrupt

    return on_progress


@pytest.mark.slow
def test_an_interrupted_run_resumes_and_ends_as_an_uninterrupted_one(
    reference: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    db, uninterrupted = reference
    spec = dataclasses.replace(TINY, out=tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        train(db, spec, interrupt_in_epoch(2))
    state = json.loads((tmp_path / "ckpt" / LAST / STATE_FILE).read_text())
    assert state["epoch"] == 1
    resumed = train(db, spec)
    assert resumed.resumed_from_epoch == 1
    # Bit for bit: weights, AdamW moments, scheduler and dropout RNG all come back from last/.
    # Only the timings (examples_per_s, seconds) differ.
    assert comparable(resumed.history) == comparable(uninterrupted.history)


@pytest.mark.slow
def test_rerunning_a_finished_run_trains_nothing_and_records_it_again(
    reference: tuple[Path, TrainResult],
) -> None:
    db, first = reference
    again = train(db, dataclasses.replace(TINY, out=first.checkpoint.parent))
    assert again.resumed_from_epoch == 2
    assert again.history == first.history
    assert train_runs(db).count(first.run_id) == 1


# --- early stopping and the store ----------------------------------------------------------------


@pytest.mark.slow
def test_training_stops_when_the_dev_loss_rises(tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.duckdb", "flipped", corpus(flip_dev=True))
    spec = TrainSpec(corpus="flipped", epochs=4, max_length=32, lr=2e-4, warmup=0, patience=0)
    result = train(db, dataclasses.replace(spec, out=tmp_path / "ckpt"))
    losses = [row["dev_loss"] for row in result.history]
    # Learning the train labels is unlearning the flipped dev labels: epoch 2 is worse.
    assert len(losses) == 2 and losses[1] > losses[0]
    assert result.best_epoch == 1


@pytest.mark.slow
def test_the_run_appears_in_the_store_only_when_training_completes(db: Path) -> None:
    spec = dataclasses.replace(TINY, epochs=1)
    seen_during: list[list[str]] = []

    def watch(progress: TrainProgress) -> None:
        if progress.step == 1:
            seen_during.append(train_runs(db))

    with pytest.raises(KeyboardInterrupt):
        train(db, spec, interrupt_in_epoch(1))
    assert train_runs(db) == []
    result = train(db, spec, watch)
    assert seen_during == [[]]
    with Store(db, read_only=True) as store:
        run = store.get_run(result.run_id)
    assert run.kind == "train" and run.model == "minilm+ft:tiny" and run.split == "train"
    assert run.checkpoint == str(result.checkpoint) and run.layers == 6 and run.heads == 12
    assert run.metrics["best_epoch"] == 1 and len(run.metrics["history"]) == 1
    assert run.metrics["dev"]["f1"] == run.metrics["f1"] == result.history[0]["dev_f1"]
    assert run.config["epochs"] == 1 and run.config["corpus"] == "tiny"
    assert result.checkpoint == db.parent / "checkpoints" / result.run_id / BEST


@pytest.mark.slow
def test_bucketed_and_max_padded_batches_both_train(db: Path, tmp_path: Path) -> None:
    spec = dataclasses.replace(TINY, epochs=1, pad_to_max=True, out=tmp_path / "padded")
    padded = train(db, spec)
    assert padded.history[0]["examples_per_s"] > 0
    assert padded.run_id != run_id_for(dataclasses.replace(spec, pad_to_max=False))


# --- refusals ------------------------------------------------------------------------------------


def refused(db: Path, spec: TrainSpec, message: str) -> None:
    before = sorted(p.name for p in db.parent.iterdir())
    with pytest.raises(EditlensError, match=message) as error:
        train(db, spec)
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in db.parent.iterdir()) == before
    assert train_runs(db) == []


def test_a_corpus_that_is_not_in_the_store_is_refused(db: Path) -> None:
    refused(db, TrainSpec(corpus="nope"), "corpus 'nope' is not in")


def test_a_corpus_without_train_examples_is_refused(tmp_path: Path) -> None:
    only_dev = [dataclasses.replace(e, split="dev") for e in corpus(4, 0)]
    db = make_store(tmp_path / "store.duckdb", "devonly", only_dev)
    refused(db, TrainSpec(corpus="devonly"), "corpus devonly has no train examples")


def test_a_train_split_of_edited_sentences_only_is_refused(tmp_path: Path) -> None:
    edited = [e for e in corpus(8, 4) if e.label]
    db = make_store(tmp_path / "store.duckdb", "edits", edited)
    refused(db, TrainSpec(corpus="edits"), "only 'needs edit' examples.*ingest --pairs")


def test_a_train_split_of_unedited_sentences_only_is_refused(tmp_path: Path) -> None:
    clean = [e for e in corpus(8, 4) if not e.label]
    db = make_store(tmp_path / "store.duckdb", "clean", clean)
    refused(db, TrainSpec(corpus="clean"), "only unedited examples")


def test_a_corpus_without_dev_examples_is_refused(tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.duckdb", "nodev", corpus(8, 0))
    refused(db, TrainSpec(corpus="nodev"), "no dev examples")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 0}, "batch size"),
        ({"lr": 0.0}, "learning rate"),
        ({"warmup": 1.0}, "warm-up"),
        ({"patience": -1}, "patience"),
        ({"checkpoint_every": -1}, "checkpoint-every counts steps"),
        ({"device": "tpu"}, "device 'tpu': use one of"),
        ({"device": "cpu", "precision": "fp16"}, "fp16 needs a GPU"),
        ({"precision": "fp8"}, "precision 'fp8'"),
        ({"select": "dev_f2"}, "select is one of dev_loss, dev_accuracy"),
        ({"pair_batches": True, "batch_size": 1}, "pair batches need a batch size of 2"),
    ],
)
def test_impossible_settings_are_refused(db: Path, change: dict, message: str) -> None:
    refused(db, dataclasses.replace(TrainSpec(corpus="tiny"), **change), message)


def test_a_gpu_the_machine_does_not_have_is_refused_before_anything_is_written(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    refused(db, TrainSpec(corpus="tiny", device="cuda:1"), "device cuda:1: no CUDA GPU")


def test_precision_is_part_of_the_run_but_device_and_checkpoint_interval_are_not() -> None:
    spec = TrainSpec(corpus="c")
    assert run_id_for(spec) == run_id_for(
        dataclasses.replace(spec, device="cuda:3", checkpoint_every=7)
    )
    assert run_id_for(spec) != run_id_for(dataclasses.replace(spec, precision="bf16"))
    # fp32 adds nothing: the id train.py gave this spec before precision existed
    assert run_id_for(spec) == "train-minilm-c-059804d3"


def test_pair_batches_and_selection_change_the_run_only_when_they_are_not_the_default() -> None:
    spec = TrainSpec(corpus="c")
    explicit = dataclasses.replace(spec, pair_batches=False, select="dev_loss")
    assert run_id_for(explicit) == "train-minilm-c-059804d3"  # the id before these settings
    assert run_id_for(dataclasses.replace(spec, pair_batches=True)) != run_id_for(spec)
    assert run_id_for(dataclasses.replace(spec, select="dev_accuracy")) != run_id_for(spec)


def epochs(*figures: tuple[float, float]) -> dict:
    """A training state after these epochs' (dev loss, dev accuracy), best epoch still unset."""
    history = [{"dev_loss": loss, "dev_accuracy": acc} for loss, acc in figures]
    return {"history": history, "best_epoch": 0}


def best_epoch(select: str, *figures: tuple[float, float]) -> int:
    state = epochs(*figures)
    for epoch, row in enumerate(state["history"], 1):
        if _improves(row, state, select):
            state["best_epoch"] = epoch
    return state["best_epoch"]


def test_the_kept_epoch_has_the_lowest_dev_loss_or_the_highest_dev_accuracy() -> None:
    # recipe run r4 on aesw-deleted: loss lowest at epoch 3, accuracy highest at epoch 4
    r4 = [(0.5599, 0.719), (0.5553, 0.721), (0.5325, 0.746), (0.5447, 0.757)]
    assert best_epoch("dev_loss", *r4) == 3
    assert best_epoch("dev_accuracy", *r4) == 4
    # equal accuracy: the later epoch, which the decaying schedule has settled
    assert best_epoch("dev_accuracy", (0.6, 0.70), (0.5, 0.75), (0.55, 0.75)) == 3


def test_a_checkpoint_directory_of_another_spec_is_refused(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    (out / LAST).mkdir(parents=True)
    other = {"identity": {"corpus": "else"}, "run_id": "train-x"}
    (out / LAST / STATE_FILE).write_text(json.dumps(other))
    with pytest.raises(EditlensError, match="another training run"):
        train(db, TrainSpec(corpus="tiny", out=out))


# --- streaming (no model needed) -----------------------------------------------------------------


@pytest.mark.parametrize(("limit", "sizes"), [(None, [16, 16, 16]), (40, [16, 16, 8]), (5, [5])])
def test_a_split_streams_in_id_order_a_page_at_a_time_up_to_its_limit(
    db: Path, limit: int | None, sizes: list[int]
) -> None:
    from engine.store import StoreReader

    pages = list(StoreReader(db).example_pages("tiny", splits=["train"], limit=limit, rows=16))
    assert [page.num_rows for page in pages] == sizes
    ids = [i for page in pages for i in page.column("id").to_pylist()]
    assert ids == [f"{i:04d}" for i in range(sum(sizes))]  # the train split is ids 0..47
    assert {s for page in pages for s in page.column("split").to_pylist()} == {"train"}


def pairs(ids: list[str], split: str = "train") -> list[Example]:
    """Each id as a sentence that needs an edit, followed by its edited twin."""
    examples = []
    for n, id_ in enumerate(ids):
        for twin, doubled in (("", True), (EDITED_SUFFIX, False)):
            example = dataclasses.replace(sentence(n, doubled), id=id_ + twin, split=split)
            examples.append(example)
    return examples


# "5.1.2" sorts between "5.1" and "5.1/edited" ('.' < '/'): a pair need not be adjacent
PAIR_IDS = ["1", "2", "5.1", "5.1.2", "5.10", "7", "8", "9"]


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 16])
def test_streamed_chunks_never_split_a_minimal_pair(tmp_path: Path, rows: int) -> None:
    lone = [dataclasses.replace(sentence(99, False), id="6", split="train")]  # no twin
    db = make_store(tmp_path / "store.duckdb", "pairs", pairs(PAIR_IDS) + lone)
    source = _Source(db, "pairs", "train", None, examples=0, pairs=True)
    chunks = list(_chunks(source, rows))
    ids = [i for chunk in chunks for i in chunk["id"]]
    assert ids == sorted(ids) and len(ids) == 17  # every row once, in id order
    for chunk in chunks:
        assert chunk["key"] == [pair_key(i) for i in chunk["id"]]
        for key in set(chunk["key"]) - {"6"}:
            assert chunk["key"].count(key) == 2
    if rows == 16:
        assert [len(chunk["id"]) for chunk in chunks] == [15, 2]  # "9" waits for its twin


def test_without_pair_batches_chunks_are_the_store_pages(tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.duckdb", "pairs", pairs(PAIR_IDS))
    chunks = list(_chunks(_Source(db, "pairs", "train", None, examples=0), 3))
    assert [len(chunk["id"]) for chunk in chunks] == [3, 3, 3, 3, 3, 1]
    assert all(chunk["key"] is None for chunk in chunks)


def test_chunks_are_whole_batches_and_their_shuffles_do_not_depend_on_each_other() -> None:
    from engine.train import _chunk_rng, _chunk_rows

    assert _chunk_rows(16) % 16 == 0 and _chunk_rows(10) % 10 == 0
    assert _chunk_rows(10) >= 8192 > _chunk_rows(10) - 10
    # chunk 0 shuffles as the whole split did before chunking: Random(seed + epoch)
    assert _chunk_rng(13, 2, 0).random() == random.Random(15).random()
    draws = {_chunk_rng(13, epoch, chunk).random() for epoch in (1, 2) for chunk in (0, 1, 2)}
    assert len(draws) == 6


# --- atomic state directories (no model needed) --------------------------------------------------


def test_the_run_id_depends_on_the_spec_but_not_on_the_checkpoint_directory() -> None:
    spec = TrainSpec(corpus="My Corpus")
    assert run_id_for(spec) == run_id_for(dataclasses.replace(spec, out=Path("/elsewhere")))
    assert run_id_for(spec) != run_id_for(dataclasses.replace(spec, seed=14))
    assert run_id_for(spec).startswith("train-minilm-my-corpus-")


def test_a_kill_while_writing_a_state_leaves_the_previous_one(tmp_path: Path) -> None:
    target = tmp_path / LAST

    def write(text: str) -> Callable[[Path], None]:
        def writer(directory: Path) -> None:
            directory.mkdir()
            (directory / STATE_FILE).write_text(text)
            if text == "killed":
                raise KeyboardInterrupt

        return writer

    atomic_dir(target, write("one"))
    with pytest.raises(KeyboardInterrupt):
        atomic_dir(target, write("killed"))
    recover(tmp_path)
    assert (target / STATE_FILE).read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]


@pytest.mark.parametrize("name", [LAST, "epoch-2"])
def test_a_kill_between_the_renames_puts_the_previous_state_back(tmp_path: Path, name: str) -> None:
    (tmp_path / f".{name}.old").mkdir()
    (tmp_path / f".{name}.old" / STATE_FILE).write_text("one")
    (tmp_path / f".{name}.tmp").mkdir()
    recover(tmp_path)
    assert (tmp_path / name / STATE_FILE).read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


# --- kill -9 mid-epoch (a real subprocess, a tiny model) ------------------------------------------

WORKER = """
import json, os, sys, time
from pathlib import Path
import engine.train
from engine.train import TrainSpec, train

engine.train.CHUNK_EXAMPLES = 16  # two batches a chunk: a resume skips whole chunks and steps
db, model, out = sys.argv[1:4]
spec = TrainSpec(corpus="tiny", model=model, epochs=2, batch_size=8, max_length=32, lr=1e-3,
                 patience=5, checkpoint_every=3, out=Path(out), device="cpu")
stop = os.environ.get("STALL_AT")

def show(p):
    print(json.dumps([p.epoch, p.step, p.step_loss]), flush=True)
    if stop == f"{p.epoch}.{p.step}":
        time.sleep(600)  # busy mid-epoch until the test kills us

result = train(Path(db), spec, show)
history = engine.train.comparable(result.history)
print(json.dumps({"history": history, "resumed": [result.resumed_from_epoch,
                  result.resumed_from_step]}), flush=True)
"""


def run_worker(db: Path, model: Path, out: Path, stall_at: str = "") -> tuple[list, dict]:
    """Train in a subprocess; with ``stall_at`` ("epoch.step") kill it with SIGKILL there.
    Returns the (epoch, step, loss) of every step it printed and its final line (or {})."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "STALL_AT": stall_at, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(db), str(model), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    steps, final = [], {}
    assert child.stdout is not None
    for line in child.stdout:
        value = json.loads(line)
        if isinstance(value, dict):
            final = value
            continue
        steps.append(tuple(value))
        if stall_at == f"{value[0]}.{value[1]}":
            child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=120) == (-signal.SIGKILL if stall_at else 0)
    return steps, final


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_at_its_last_checkpoint_with_the_same_losses(
    tmp_path: Path,
) -> None:
    from train_fixture import tiny_model

    db = make_store(tmp_path / "store.duckdb", "tiny", corpus(train=64, dev=16))
    model = tiny_model(tmp_path / "tiny-bert")
    uninterrupted, done = run_worker(db, model, tmp_path / "one")
    assert len(uninterrupted) == 16  # 64 examples / 8 = 8 steps, 2 epochs

    killed, final = run_worker(db, model, tmp_path / "two", stall_at="1.5")
    assert final == {} and killed[-1][:2] == (1, 5)
    state = json.loads((tmp_path / "two" / LAST / STATE_FILE).read_text())
    assert (state["epoch"], state["step"]) == (0, 3)  # checkpoint_every=3: steps 4, 5 are lost

    resumed, again = run_worker(db, model, tmp_path / "two")
    assert resumed[0][:2] == (1, 4) and again["resumed"] == [0, 3]
    # Bit for bit: the steps before the checkpoint, then the resumed ones, are the same steps
    # with the same losses (weights, AdamW moments, schedule, dropout RNG, data position).
    assert killed[:3] + resumed == uninterrupted
    assert again["history"] == done["history"]


LONE = ("004a", "009a", "050")  # train sentences without a twin, between and after the pairs


def pair_run(tmp_path: Path) -> tuple[Path, TrainSpec]:
    """20 training pairs and 3 lone sentences, 4 dev pairs, and a pair-batched tiny-model spec."""
    from train_fixture import tiny_model

    train_ids = [f"{i:03d}" for i in range(20)]
    examples = pairs(train_ids) + pairs(["900", "901", "902", "903"], split="dev")
    for n, id_ in enumerate(LONE):
        examples.append(dataclasses.replace(sentence(50 + n, False), id=id_, split="train"))
    db = make_store(tmp_path / "store.duckdb", "pairs", examples)
    spec = TrainSpec(
        corpus="pairs", model=str(tiny_model(tmp_path / "tiny-bert")), epochs=2, batch_size=6,
        max_length=32, lr=1e-3, device="cpu", pair_batches=True, select="dev_accuracy",
    )  # fmt: skip
    return db, spec


@pytest.mark.slow
def test_pair_batches_train_every_pair_in_one_batch_and_count_their_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.batching

    db, spec = pair_run(tmp_path)
    seen: list[list[str]] = []  # every training batch, as its rows' keys

    bucketed = engine.batching.bucketed

    def recording(
        lengths: list[int], size: int, rng: random.Random | None = None, keys: list | None = None
    ) -> list[list[int]]:
        batches = bucketed(lengths, size, rng, keys)
        if rng is not None and keys is not None:
            seen.extend([keys[i] for i in rows] for rows in batches)
        return batches

    monkeypatch.setattr(engine.batching, "bucketed", recording)
    progress: list[TrainProgress] = []
    result = train(db, dataclasses.replace(spec, out=tmp_path / "ckpt"), progress.append)
    assert len(seen) == 18 and all(len(rows) <= 6 for rows in seen)
    for rows in seen:
        assert all(rows.count(key) == 2 for key in set(rows) - set(LONE))
    # 20 pairs, 3 a batch: 7 batches; 004a and 009a: 1; 050, held back for a twin that never
    # comes, a chunk of its own: 9 steps, where ceil(43 / 6) would say 8
    assert [p.step for p in progress] == [*range(1, 10)] * 2
    assert {p.steps for p in progress} == {9}
    accuracies = [row["dev_accuracy"] for row in result.history]
    assert result.best_epoch == max(e for e, a in enumerate(accuracies, 1) if a == max(accuracies))


@pytest.mark.slow
def test_a_pair_batched_run_resumes_mid_epoch_across_chunks_as_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.train

    monkeypatch.setattr(engine.train, "CHUNK_EXAMPLES", 6)  # pages of 6 rows: pairs held back
    db, spec = pair_run(tmp_path)
    spec = dataclasses.replace(spec, checkpoint_every=3)
    steps: list[tuple[int, int, float]] = []
    counted: set[int] = set()

    def record(p: TrainProgress) -> None:
        steps.append((p.epoch, p.step, p.step_loss))
        counted.add(p.steps)

    uninterrupted = train(db, dataclasses.replace(spec, out=tmp_path / "one"), record)
    # chunks of 6, 5, 7, 7, 6, 6, 6 and 1 rows take 1, 2, 1, 2, 1, 1, 1, 1 steps (a lone sentence
    # takes a batch of its own): the second chunk ends at step 3, where ceil(rows / 6) says 2
    assert counted == {10} and [s for e, s, _ in steps if e == 1] == list(range(1, 11))

    def stop_at_step_5(p: TrainProgress) -> None:
        if (p.epoch, p.step) == (1, 5):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(db, dataclasses.replace(spec, out=tmp_path / "two"), stop_at_step_5)
    resumed_steps: list[tuple[int, int, float]] = []
    resumed = train(
        db,
        dataclasses.replace(spec, out=tmp_path / "two"),
        lambda p: resumed_steps.append((p.epoch, p.step, p.step_loss)),
    )
    assert resumed.resumed_from_step == 3  # two chunks skipped unread, their steps counted
    assert resumed_steps == steps[3:]
    assert comparable(resumed.history) == comparable(uninterrupted.history)


@pytest.mark.slow
def test_bf16_training_on_the_cpu_stays_close_to_fp32_and_is_recorded(tmp_path: Path) -> None:
    from train_fixture import tiny_model

    db = make_store(tmp_path / "store.duckdb", "tiny", corpus(train=32, dev=16))
    spec = TrainSpec(
        corpus="tiny", model=str(tiny_model(tmp_path / "tiny-bert")), epochs=1, batch_size=8,
        max_length=32, lr=1e-3, device="cpu",
    )  # fmt: skip
    fp32 = train(db, dataclasses.replace(spec, out=tmp_path / "fp32"))
    bf16 = train(db, dataclasses.replace(spec, precision="bf16", out=tmp_path / "bf16"))
    assert bf16.run_id != fp32.run_id
    low, full = bf16.history[0], fp32.history[0]
    assert low["train_loss"] != full["train_loss"]  # it did compute in bf16
    assert low["train_loss"] == pytest.approx(full["train_loss"], abs=0.02)
    assert low["dev_loss"] == pytest.approx(full["dev_loss"], abs=0.02)
    with Store(db, read_only=True) as store:
        config = store.get_run(bf16.run_id).config
    assert (config["precision"], config["device"], config["processes"]) == ("bf16", "cpu", 1)

"""Fine-tuning: a "needs edit" sequence classifier, seeded, resumable mid-epoch, best epoch kept.

The train split streams from the store in chunks of ``CHUNK_EXAMPLES`` (id order), each encoded
and cut into shuffled length buckets on its own, so memory does not grow with the corpus. State
lives in ``<out>/last/`` (model, optimizer, scheduler, RNG states, the position in the epoch)
after every epoch and every ``checkpoint_every`` optimizer steps, and the best epoch (by dev loss,
or by dev accuracy: ``TrainSpec.select``) in ``<out>/best/``; both are written to a temporary directory and renamed into place, so a kill
(even ``kill -9``) loses at most ``checkpoint_every`` steps and the resumed run takes the same
steps as an uninterrupted one. The run reaches the store only when training is over, through a
staging file merged in one transaction.

Under ``torchrun``/``accelerate launch`` training is data-parallel (DDP through Accelerate):
``batch_size`` stays the global batch, each rank takes its share of every batch, and only rank 0
writes checkpoints and the store.

Longer than most modules: the spec and run identity, the streamed split (pages, pairs kept
whole, per-chunk shuffles) and the training loop are one resumable procedure whose parts share
the resume position; what a checkpoint holds on disk is ``engine.checkpoints``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import checkpoints
from engine.checkpoints import (
    BEST,
    LAST,
    OPTIMIZER_JSON,
    OPTIMIZER_TENSORS,
    RNG_TENSORS,
    SCALER_JSON,
    SCHEDULER_JSON,
    STATE_FILE,
)
from engine.corpus import EDITED_SUFFIX, pair_key
from engine.device import DEFAULT_DEVICE, DEFAULT_PRECISION
from engine.errors import EditlensError
from engine.models import model_label, slug

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

    from engine.align import Encoded
    from engine.device import Processes
    from engine.models import LoadedModel

STAGING = "staging.duckdb"
CLIP_NORM = 1.0
CHUNK_EXAMPLES = 8192  # examples read, encoded and bucketed at a time: bounds training memory
TIMING_KEYS = ("examples_per_s", "seconds")  # history keys that differ between equal runs
# Settings that change where or how often, not what is computed: not part of a run's identity.
NOT_IDENTITY = ("out", "device", "checkpoint_every", "keep_epochs")
# Settings added after runs were recorded: left out of the identity at their default, so those
# runs keep their ids.
LATER_SETTINGS = ("precision", "pair_batches", "select")
SELECT_ON = ("dev_loss", "dev_accuracy")  # what picks the epoch kept in best/


@dataclass(frozen=True)
class TrainSpec:
    """What to fine-tune on what, and how; equal specs give equal runs (same id, same losses)."""

    corpus: str
    model: str = "minilm"
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 16  # the global batch, whatever the number of processes
    max_length: int = 128
    seed: int = 13
    patience: int = 2  # epochs without a better ``select`` figure before stopping (0 acts as 1)
    warmup: float = 0.1  # share of steps with linear warm-up, then linear decay to 0
    out: Path | None = None  # checkpoint directory; default: <db dir>/checkpoints/<run id>
    limit: int | None = None  # cap on training examples (and on dev examples), first by id
    pad_to_max: bool = False  # the benchmark's baseline: pad every batch to max_length
    device: str = DEFAULT_DEVICE  # auto | cpu | cuda | cuda:N | mps
    precision: str = DEFAULT_PRECISION  # fp32 | bf16 | fp16 (autocast; fp16 with loss scaling)
    checkpoint_every: int = 500  # optimizer steps between mid-epoch checkpoints (0: epochs only)
    pair_batches: bool = False  # a sentence and its edited twin always in one training batch
    # The epoch kept in best/. dev_accuracy: on aesw-deleted (lr 2e-4, 4 epochs, decay to 0) dev
    # loss was lowest at epoch 3 (acc 0.746) while epoch 4 reached 0.757 -- the model grows
    # over-confident on the pairs it gets wrong -- so the lowest loss kept the worse model. Ties
    # go to the later epoch, which the decaying schedule has settled. dev_loss stays the default
    # so existing runs (and the demo's figures) do not change.
    select: str = "dev_loss"
    # Every epoch's model in <out>/epoch-N/ as well: how interpretability moves with training.
    keep_epochs: bool = False


@dataclass(frozen=True)
class TrainProgress:
    """One optimizer step done: what a progress bar shows."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based, within the epoch
    steps: int  # steps in this epoch
    loss: float  # running mean of the training loss over this epoch's examples so far
    examples_per_s: float  # training throughput of this epoch so far
    step_loss: float = math.nan  # this step's mean loss over its (global) batch


@dataclass(frozen=True)
class TrainResult:
    """A finished training run: its id in the store and the checkpoint evaluation loads."""

    run_id: str
    checkpoint: Path  # <out>/best
    best_epoch: int
    history: list[dict[str, Any]]  # per epoch: losses, dev classification, examples_per_s
    resumed_from_epoch: int  # 0 when fresh
    staging: Path  # where the run waits when trained with merge=False
    resumed_from_step: int = 0  # optimizer steps of that epoch already done when resumed
    epoch_checkpoints: dict[int, Path] = dataclasses.field(default_factory=dict)  # keep_epochs


@dataclass
class _Split:
    """One chunk of a split in memory as the model reads it."""

    encoded: list[Encoded]
    labels: torch.Tensor  # (examples,) long, 1 = needs edit
    keys: list[str] | None  # each example's minimal pair when pairs share a batch, else None

    @property
    def lengths(self) -> list[int]:
        return [len(e.input_ids) for e in self.encoded]


@dataclass(frozen=True)
class _Source:
    """Where a split streams from, and how many examples it has (after ``limit``)."""

    db: Path
    corpus: str
    split: str
    limit: int | None
    examples: int
    pairs: bool = False  # a chunk never splits a minimal pair (training with pair batches)
    steps: int = 0  # batches of an epoch (train split)


# --- identity ------------------------------------------------------------------------------------


def spec_config(spec: TrainSpec) -> dict[str, Any]:
    """The spec as JSON-safe values (paths as strings), as the runs table stores it."""
    config = asdict(spec)
    config["out"] = None if spec.out is None else str(spec.out)
    return config


def _identity(spec: TrainSpec) -> dict[str, Any]:
    """What makes two runs the same run: everything that changes the weights.

    Later settings at their default are left out, so runs trained before them keep their ids.
    """
    identity = spec_config(spec)
    for key in NOT_IDENTITY:
        del identity[key]
    defaults = TrainSpec(corpus=spec.corpus)
    for key in LATER_SETTINGS:
        if getattr(spec, key) == getattr(defaults, key):
            del identity[key]
    return identity


def run_id_for(spec: TrainSpec) -> str:
    """Deterministic, so rerunning the same command finds its own state and replaces its run."""
    digest = hashlib.sha1(json.dumps(_identity(spec), sort_keys=True).encode()).hexdigest()[:8]
    return f"train-{slug(model_label(spec.model))}-{slug(spec.corpus)}-{digest}"


# --- the run -------------------------------------------------------------------------------------


def train(
    db: Path,
    spec: TrainSpec,
    on_progress: Callable[[TrainProgress], None] | None = None,
    *,
    merge: bool = True,
) -> TrainResult:
    """Fine-tune ``spec.model`` on the corpus' train split, early-stopped on its dev split.

    Resumes from ``<out>/last/`` when it holds a state of the same spec, mid-epoch included.
    Bad input raises ``EditlensError`` before anything is written. With ``merge=False`` the run
    is left in ``TrainResult.staging`` for the caller to publish (a TUI that holds the store
    open). Under several processes every rank calls this; rank 0 alone writes.
    """
    import torch

    from engine.device import check_precision, grad_scaler, start_processes
    from engine.models import load_model

    _check_spec(spec)
    procs = start_processes(spec.device)
    check_precision(procs.device, spec.precision)
    db = Path(db)
    run_id = run_id_for(spec)
    train_source, dev_source = _sources(db, spec)
    # absolute, so the checkpoint path in the runs table works from any working directory
    out = (
        Path(spec.out) if spec.out is not None else db.parent / "checkpoints" / run_id
    ).absolute()
    if procs.main:
        checkpoints.check_writable(out)  # before the model loads, not at the first checkpoint
        checkpoints.recover(out)
    procs.barrier()
    state = _load_state(out, spec)

    if state is not None and (state["stopped"] or state["epoch"] >= spec.epochs):
        # Trained before but maybe killed before the merge: publish again, load no model.
        if procs.main:
            _publish(db, out, spec, checkpoints.saved_shape(out / BEST), state, merge)
        procs.barrier()
        return _result(out, state, resumed_from=int(state["epoch"]))

    if state is None:
        torch.manual_seed(spec.seed)  # the classifier head's initialisation, then dropout
        loaded = load_model(spec.model, seed=spec.seed)
        loaded.model.config.id2label = {0: "unedited", 1: "needs edit"}
        loaded.model.config.label2id = {"unedited": 0, "needs edit": 1}
        if procs.rank:  # every rank starts from the same weights, with its own dropout
            torch.manual_seed(spec.seed + procs.rank)
        state = _fresh_state(spec, run_id)
    else:
        loaded = load_model(str(out / LAST), seed=spec.seed)
    loaded.check_max_length(spec.max_length)  # a longer sentence would crash mid-epoch
    resumed_from, resumed_step = int(state["epoch"]), int(state.get("step", 0))
    state.update(device=procs.device_name, processes=procs.world)  # where it trained last
    model = loaded.model.to(procs.device)
    pad_id = int(loaded.tokenizer.pad_token_id)

    steps_per_epoch = train_source.steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr)
    scheduler = _linear_schedule(optimizer, spec.warmup, spec.epochs * steps_per_epoch)
    scaler = grad_scaler(procs.device, spec.precision)
    if resumed_from or resumed_step:
        checkpoints.load_training_state(out / LAST, optimizer, scheduler, scaler, procs)
    trainer = _Trainer(loaded, procs.wrap(model), optimizer, scheduler, scaler, spec, procs, pad_id)

    def checkpoint() -> None:
        rng = checkpoints.rng_states(procs)  # every rank takes part; rank 0 writes
        if procs.main:
            checkpoints.atomic_dir(out / LAST, lambda tmp: trainer.save_last(state, rng, tmp))

    epoch = resumed_from
    while epoch < spec.epochs and not state["stopped"]:
        epoch += 1
        row = trainer.train_epoch(train_source, epoch, state, checkpoint, on_progress)
        dev_loss, dev = trainer.evaluate(dev_source)
        row.update(dev_loss=dev_loss, **{f"dev_{k}": v for k, v in dev.items()})
        state["history"].append(row)
        state.update(epoch=epoch, step=0, loss_sum=0.0, seen=0)
        meta = _meta(spec, run_id, epoch, dev_loss, dev)
        if spec.keep_epochs and procs.main:
            checkpoints.atomic_dir(
                out / checkpoints.epoch_dir(epoch), lambda tmp, m=meta: _save_model(loaded, tmp, m)
            )
        if _improves(row, state, spec.select):
            state.update(best_dev_loss=dev_loss, best_epoch=epoch, bad_epochs=0)
            if procs.main:
                checkpoints.atomic_dir(out / BEST, lambda tmp, m=meta: _save_model(loaded, tmp, m))
        else:
            state["bad_epochs"] += 1
        state["stopped"] = state["bad_epochs"] >= max(spec.patience, 1)
        checkpoint()

    if procs.main:
        _publish(db, out, spec, (loaded.layers, loaded.heads), state, merge)
    procs.barrier()
    return _result(out, state, resumed_from, resumed_step)


def _improves(row: dict[str, Any], state: dict[str, Any], select: str) -> bool:
    """Whether this epoch's dev figures beat the best epoch's so far (``TrainSpec.select``)."""
    if not state["best_epoch"]:
        return True
    best = state["history"][state["best_epoch"] - 1]
    if select == "dev_accuracy":
        return row["dev_accuracy"] >= best["dev_accuracy"]
    return row["dev_loss"] < best["dev_loss"]


def _fresh_state(spec: TrainSpec, run_id: str) -> dict[str, Any]:
    return {
        "identity": _identity(spec),
        "run_id": run_id,
        "epoch": 0,  # epochs finished
        "step": 0,  # optimizer steps done in the epoch after them
        "loss_sum": 0.0,  # that epoch's summed training loss and examples so far
        "seen": 0,
        "history": [],
        "best_dev_loss": None,
        "best_epoch": 0,
        "bad_epochs": 0,
        "stopped": False,
        "started": datetime.now().isoformat(),
    }


def _result(
    out: Path, state: dict[str, Any], resumed_from: int, resumed_step: int = 0
) -> TrainResult:
    return TrainResult(
        run_id=state["run_id"],
        checkpoint=out / BEST,
        best_epoch=int(state["best_epoch"]),
        history=list(state["history"]),
        resumed_from_epoch=resumed_from,
        staging=out / STAGING,
        resumed_from_step=resumed_step,
        epoch_checkpoints=checkpoints.epoch_checkpoints(out),
    )


def _check_spec(spec: TrainSpec) -> None:
    problems = [
        (spec.epochs < 1, f"epochs must be at least 1 (got {spec.epochs})"),
        (spec.batch_size < 1, f"batch size must be at least 1 (got {spec.batch_size})"),
        (not spec.lr > 0, f"learning rate must be positive (got {spec.lr})"),
        (spec.max_length < 8, f"max length must be at least 8 tokens (got {spec.max_length})"),
        (spec.patience < 0, f"patience must be 0 or more (got {spec.patience})"),
        (not 0 <= spec.warmup < 1, f"warm-up is a share of steps in [0, 1) (got {spec.warmup})"),
        (spec.limit is not None and spec.limit < 1, f"limit must be positive (got {spec.limit})"),
        (
            spec.checkpoint_every < 0,
            f"checkpoint-every counts steps, 0 or more (got {spec.checkpoint_every})",
        ),
        (
            spec.select not in SELECT_ON,
            f"select is one of {', '.join(SELECT_ON)} (got {spec.select!r})",
        ),
        (
            spec.pair_batches and spec.batch_size < 2,
            f"pair batches need a batch size of 2 or more (got {spec.batch_size})",
        ),
    ]
    for bad, message in problems:
        if bad:
            raise EditlensError(message)


def _sources(db: Path, spec: TrainSpec) -> tuple[_Source, _Source]:
    """The train and dev splits as streams, after the checks that need the data.

    Reads the train split once, chunk by chunk as training will, to refuse a one-class split
    and to count the steps of an epoch.
    """
    from engine.batching import batch_count
    from engine.store import Store

    with Store(db, read_only=True) as store:
        if not store.has_corpus(spec.corpus):
            names = ", ".join(c.name for c in store.corpora()) or "none"
            raise EditlensError(
                f"corpus {spec.corpus!r} is not in {db} (corpora: {names}); "
                "ingest it first or check the name"
            )
        dev = store.count_examples(spec.corpus, ["dev"])
    train = _Source(db, spec.corpus, "train", spec.limit, examples=0, pairs=spec.pair_batches)
    counts = [0, 0]  # unedited, needs edit
    steps = 0
    for columns in _chunks(train, _chunk_rows(spec.batch_size)):
        steps += batch_count(columns["key"], len(columns["label"]), spec.batch_size)
        needs_edit = sum(columns["label"])
        counts[1] += needs_edit
        counts[0] += len(columns["label"]) - needs_edit
    if not sum(counts):
        raise EditlensError(f"corpus {spec.corpus} has no train examples")
    if not counts[0]:
        raise EditlensError(
            f"corpus {spec.corpus}: the train split has only 'needs edit' examples; "
            "add unedited sentences, e.g. ingest --pairs"
        )
    if not counts[1]:
        raise EditlensError(
            f"corpus {spec.corpus}: the train split has only unedited examples; "
            "add sentences that need an edit"
        )
    if not dev:
        raise EditlensError(
            f"corpus {spec.corpus} has no dev examples; early stopping needs them "
            "(ingest without --split assigns 10 % of ids to dev)"
        )
    dev = dev if spec.limit is None else min(dev, spec.limit)
    return (
        dataclasses.replace(train, examples=sum(counts), steps=steps),
        _Source(db, spec.corpus, "dev", spec.limit, dev),
    )


def _chunks(source: _Source, rows: int) -> Iterator[dict[str, list[Any]]]:
    """The split in id order, ``rows`` examples at a time (the last chunk may be shorter);
    the store is held only while a chunk is read, so others may write during an epoch.

    With ``source.pairs`` each chunk's ``key`` column names its examples' minimal pairs, and a
    pair cut by a page boundary is held back whole for the next chunk (``_split_pairs``).
    """
    from engine.store import StoreReader

    reader = StoreReader(source.db)
    pages = reader.example_pages(
        source.corpus, splits=[source.split], limit=source.limit, rows=rows
    )
    held: dict[str, list[Any]] | None = None
    for page in pages:
        reader.close()  # DuckDB's cache of the pages read so far goes: it would grow to its cap
        columns = _columns(page, source.pairs)
        if not source.pairs:
            yield columns
            continue
        if held is not None:
            columns = {name: held[name] + values for name, values in columns.items()}
        columns, held = _split_pairs(columns)
        if columns["label"]:
            yield columns
    reader.close()  # the query that found no further page opened it again
    if held is not None and held["label"]:
        yield held


def _split_pairs(
    columns: dict[str, list[Any]],
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """A page cut before its first original whose twin may be on the next page, and the rest.

    Ids come sorted and an edited twin's id extends its original's, so the twin of ``x`` can
    only be missing from a page ending at ``last`` when ``x + "/edited" > last``; the rest is a
    tail, so the cut keeps id order.
    """
    ids, keys, last = columns["id"], columns["key"], columns["id"][-1]
    present = set(ids)
    cut = next(
        (
            i
            for i, (id_, key) in enumerate(zip(ids, keys, strict=True))
            if id_ == key and id_ + EDITED_SUFFIX not in present and id_ + EDITED_SUFFIX > last
        ),
        len(ids),
    )
    return (
        {name: values[:cut] for name, values in columns.items()},
        {name: values[cut:] for name, values in columns.items()},
    )


def _columns(table: pa.Table, pairs: bool) -> dict[str, list[Any]]:
    columns = {
        name: table.column(name).to_pylist() for name in ("id", "text", "starts", "ends", "label")
    }
    columns["key"] = [pair_key(i) for i in columns["id"]] if pairs else None
    return columns


def _chunk_rows(batch_size: int) -> int:
    """Examples per chunk: a whole number of batches, so an epoch has ceil(n / batch) steps."""
    return batch_size * -(-CHUNK_EXAMPLES // batch_size)


def _chunk_rng(seed: int, epoch: int, chunk: int) -> random.Random:
    """The shuffle of one chunk in one epoch, independent of the others (a resume skips them).

    Chunk 0 gets the generator the whole split had before chunking, so a corpus of one chunk
    trains exactly as it did.
    """
    return random.Random(seed + epoch + (chunk << 32))


def _encode(loaded: LoadedModel, columns: dict[str, list[Any]], max_length: int) -> _Split:
    import torch

    from engine.align import encode

    encoded = encode(
        loaded.tokenizer, columns["text"], columns["starts"], columns["ends"], max_length
    )
    return _Split(encoded, torch.tensor(columns["label"], dtype=torch.long), columns["key"])


def _linear_schedule(
    optimizer: torch.optim.Optimizer, warmup: float, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` of the steps, then linear decay to 0 at the last step."""
    from torch.optim.lr_scheduler import LambdaLR

    warmup_steps = round(warmup * total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return LambdaLR(optimizer, factor)


class _Trainer:
    """The model being trained, its optimizer, and this process's place in the job."""

    def __init__(
        self,
        loaded: LoadedModel,
        model: Any,  # loaded.model, or its DistributedDataParallel wrapper
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR,
        scaler: torch.amp.GradScaler,
        spec: TrainSpec,
        procs: Processes,
        pad_id: int,
    ) -> None:
        self.loaded, self.model, self.spec, self.procs = loaded, model, spec, procs
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.pad_id = pad_id
        self.pad_to = spec.max_length if spec.pad_to_max else None

    def train_epoch(
        self,
        source: _Source,
        epoch: int,
        state: dict[str, Any],
        checkpoint: Callable[[], None],
        on_progress: Callable[[TrainProgress], None] | None,
    ) -> dict[str, Any]:
        """One pass over the train split from ``state["step"]``; timing covers only the steps."""
        spec = self.spec
        self.model.train()
        steps = source.steps
        loss_sum, seen = float(state.get("loss_sum", 0.0)), int(state.get("seen", 0))
        timed, started = 0, time.perf_counter()
        for step, data, rows in self._batches(source, epoch, int(state.get("step", 0))):
            step_loss = self._step(data, rows)
            if not math.isfinite(step_loss):
                raise EditlensError(
                    f"training diverged in epoch {epoch} (loss {step_loss}); lower the learning rate"
                )
            loss_sum += step_loss * len(rows)
            seen += len(rows)
            timed += len(rows)
            if spec.checkpoint_every and step % spec.checkpoint_every == 0 and step < steps:
                state.update(step=step, loss_sum=loss_sum, seen=seen)
                checkpoint()
            if on_progress is not None and self.procs.main:
                rate = timed / (time.perf_counter() - started)
                on_progress(
                    TrainProgress(epoch, spec.epochs, step, steps, loss_sum / seen, rate, step_loss)
                )
        seconds = time.perf_counter() - started
        return {
            "epoch": epoch,
            "train_loss": loss_sum / seen,
            "examples_per_s": timed / seconds if timed else 0.0,
            "seconds": seconds,
        }

    def _batches(
        self, source: _Source, epoch: int, start_step: int
    ) -> Iterator[tuple[int, _Split, list[int]]]:
        """(step, chunk, rows) of an epoch from ``start_step`` on; skipped chunks are not encoded."""
        from engine.batching import batch_count, bucketed

        size, step = self.spec.batch_size, 0
        for chunk, columns in enumerate(_chunks(source, _chunk_rows(size))):
            chunk_steps = batch_count(columns["key"], len(columns["label"]), size)
            if step + chunk_steps <= start_step:
                step += chunk_steps
                continue
            data = _encode(self.loaded, columns, self.spec.max_length)
            rng = _chunk_rng(self.spec.seed, epoch, chunk)
            for rows in bucketed(data.lengths, size, rng, data.keys):
                step += 1
                if step > start_step:
                    yield step, data, rows

    def _step(self, data: _Split, rows: list[int]) -> float:
        """One optimizer step on a global batch; returns its mean loss over every process."""
        import torch
        import torch.nn.functional as F

        from engine.batching import collate
        from engine.device import autocast

        device, procs = self.procs.device, self.procs
        mine = rows[procs.rank :: procs.world]
        # DDP averages gradients over ranks, so each rank's summed loss is scaled to make the
        # result the mean over the global batch; a rank left without rows still joins the sync.
        weight = procs.world / len(rows) if mine else 0.0
        mine = mine or rows[:1]
        batch = collate(data.encoded, mine, self.pad_id, pad_to=self.pad_to)
        with autocast(device, self.spec.precision):
            logits = self.model(
                input_ids=batch.input_ids.to(device),
                attention_mask=batch.attention_mask.to(device),
            ).logits  # (rows, 2)
        summed = F.cross_entropy(logits.float(), data.labels[mine].to(device), reduction="sum")
        total = procs.sum([summed.item() if weight else 0.0])[0] / len(rows)
        if not math.isfinite(total):
            return total  # diverged: the caller stops before this step changes any weight
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(summed * weight).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP_NORM)
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scaler.get_scale() >= scale:  # fp16 skips a step with overflowing gradients
            self.scheduler.step()
        return total

    def evaluate(self, source: _Source) -> tuple[float, dict]:
        """Mean dev loss and dev classification, without gradients or dropout.

        Each rank takes every ``world``-th batch; the sums meet on every rank, so all agree.
        """
        import torch
        import torch.nn.functional as F

        from engine.batching import bucketed, collate
        from engine.device import autocast

        model, device, procs = self.loaded.model, self.procs.device, self.procs
        model.eval()
        loss_sum, counts = 0.0, [0, 0, 0, 0]  # true/false positives, false/true negatives
        with torch.inference_mode():
            for columns in _chunks(source, _chunk_rows(self.spec.batch_size)):
                data = _encode(self.loaded, columns, self.spec.max_length)
                batches = bucketed(data.lengths, self.spec.batch_size * 2)
                for rows in batches[procs.rank :: procs.world]:
                    batch = collate(data.encoded, rows, self.pad_id, pad_to=self.pad_to)
                    with autocast(device, self.spec.precision):
                        logits = model(
                            input_ids=batch.input_ids.to(device),
                            attention_mask=batch.attention_mask.to(device),
                        ).logits.float()  # (rows, 2)
                    labels = data.labels[rows]
                    loss_sum += F.cross_entropy(logits, labels.to(device), reduction="sum").item()
                    gold, pred = labels == 1, logits.argmax(dim=-1).cpu() == 1
                    for i, cell in enumerate((gold & pred, ~gold & pred, gold & ~pred)):
                        counts[i] += int(cell.sum())
                    counts[3] += int((~gold & ~pred).sum())
        loss_sum, *totals = procs.sum([loss_sum, *counts])
        return loss_sum / source.examples, asdict(_classification([round(t) for t in totals]))

    def save_last(
        self, state: dict[str, Any], rng: dict[str, torch.Tensor], directory: Path
    ) -> None:
        """Everything a resumed run needs, as safetensors and JSON (never pickles); state last."""
        from safetensors.torch import save_file

        spec = state["identity"]
        meta = {
            "model": model_label(spec["model"]),
            "corpus": spec["corpus"],
            "epoch": state["epoch"],
        }
        _save_model(self.loaded, directory, meta)
        tensors, rest = checkpoints.flatten_optimizer(self.optimizer.state_dict())
        save_file(tensors, str(directory / OPTIMIZER_TENSORS))
        (directory / OPTIMIZER_JSON).write_text(json.dumps(rest))
        (directory / SCHEDULER_JSON).write_text(json.dumps(self.scheduler.state_dict()))
        (directory / SCALER_JSON).write_text(json.dumps(self.scaler.state_dict()))
        save_file(rng, str(directory / RNG_TENSORS))
        (directory / STATE_FILE).write_text(json.dumps(state, indent=1))


def _classification(counts: Sequence[int]) -> Any:
    """Classification figures from (tp, fp, fn, tn), through the one tested scorer."""
    import numpy as np

    from engine.metrics import classification

    gold = np.repeat([True, False, True, False], counts)
    pred = np.repeat([True, True, False, False], counts)
    return classification(gold, pred)


# --- state on disk -------------------------------------------------------------------------------


def _meta(spec: TrainSpec, run_id: str, epoch: int, dev_loss: float, dev: dict) -> dict:
    """editlens.json of a checkpoint: ``model`` and ``corpus`` name it in reports."""
    return {
        "model": model_label(spec.model),
        "base": spec.model,
        "corpus": spec.corpus,
        "run_id": run_id,
        "epoch": epoch,
        "dev_loss": dev_loss,
        "dev": dev,
        "spec": spec_config(spec),
    }


def _save_model(loaded: LoadedModel, directory: Path, meta: dict) -> None:
    from engine.models import save_checkpoint

    save_checkpoint(loaded, directory, meta)


def _load_state(out: Path, spec: TrainSpec) -> dict[str, Any] | None:
    """The saved state of this spec, None when there is none to trust; another spec's refuses."""
    last = out / LAST
    state = checkpoints.read_state(last)
    if state is None:
        return None
    if state["identity"] != _identity(spec):
        raise EditlensError(
            f"{out} holds the state of another training run (run {state.get('run_id')}); "
            "pass another --out or remove that directory"
        )
    checkpoints.check_state(last, state)
    complete = all((last / name).is_file() for name in checkpoints.LAST_FILES)
    best_expected = int(state.get("epoch", 0)) > 0  # none before the first epoch ends
    if not complete or (best_expected and not (out / BEST / "model.safetensors").is_file()):
        return None  # not written by us in one piece: start afresh and overwrite it
    checkpoints.check_tensors(last)  # before the model loads from it
    return state


# --- the store -----------------------------------------------------------------------------------


def _publish(
    db: Path,
    out: Path,
    spec: TrainSpec,
    shape: tuple[int, int],
    state: dict[str, Any],
    merge: bool,
) -> None:
    """Record the run in a staging store, then merge it: the runs table sees all of it or none."""
    from engine.store import Run, Store, publish_run, remove_store_file

    best_row = state["history"][state["best_epoch"] - 1]
    dev = {key.removeprefix("dev_"): value for key, value in best_row.items() if "dev_" in key}
    dev["loss"] = best_row["dev_loss"]
    run = Run(
        id=state["run_id"],
        kind="train",
        model=f"{model_label(spec.model)}+ft:{spec.corpus}",
        checkpoint=str(out / BEST),
        corpus=spec.corpus,
        split="train",
        layers=shape[0],
        heads=shape[1],
        config={
            **spec_config(spec),
            "device": state.get("device", spec.device),
            "processes": state.get("processes", 1),
        },
        # accuracy/f1/... at the top too: the runs overview reads them from there
        metrics={
            "best_epoch": state["best_epoch"],
            "history": state["history"],
            "dev": dev,
            **{k: v for k, v in dev.items() if k in ("accuracy", "precision", "recall", "f1")},
        },
        started=datetime.fromisoformat(state["started"]),
        finished=datetime.now(),
    )
    staging = out / STAGING
    remove_store_file(staging)
    with Store(staging) as store:
        store.record_run(run)
    if merge:
        publish_run(db, staging, run.id)


def comparable(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A history without its timings: what two runs of one spec must agree on exactly."""
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in history]

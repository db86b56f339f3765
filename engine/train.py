"""Fine-tuning: a "needs edit" sequence classifier, seeded, resumable, with the best epoch kept.

State lives in ``<out>/last/`` (model, optimizer, scheduler, RNG, history) after every epoch and
the best epoch by dev loss in ``<out>/best/``; both are written to a temporary directory and
renamed into place, so a kill mid-save leaves the previous state intact. The run reaches the
store only when training is over, through a staging file merged in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import EditlensError
from engine.models import model_label, slug
from engine.specs import TrainSpec

if TYPE_CHECKING:
    import torch

    from engine.align import Encoded
    from engine.models import LoadedModel

LAST, BEST = "last", "best"
STATE_FILE = "state.json"  # written last: a last/ without it is never trusted
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
SCHEDULER_JSON = "scheduler.json"
RNG_TENSORS = "rng.safetensors"
STAGING = "staging.duckdb"
CLIP_NORM = 1.0
ENCODE_CHUNK = 4096  # sentences per tokenizer call: bounds the tokenizer's temporary memory
TIMING_KEYS = ("examples_per_s", "seconds")  # history keys that differ between equal runs


@dataclass(frozen=True)
class TrainProgress:
    """One optimizer step done: what a progress bar shows."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based, within the epoch
    steps: int  # steps in this epoch
    loss: float  # running mean of the training loss over this epoch's examples so far
    examples_per_s: float  # training throughput of this epoch so far


@dataclass(frozen=True)
class TrainResult:
    """A finished training run: its id in the store and the checkpoint evaluation loads."""

    run_id: str
    checkpoint: Path  # <out>/best
    best_epoch: int
    history: list[dict[str, Any]]  # per epoch: losses, dev classification, examples_per_s
    resumed_from_epoch: int  # 0 when fresh
    staging: Path  # where the run waits when trained with merge=False


@dataclass
class _Split:
    """One split in memory as the model reads it."""

    encoded: list[Encoded]
    labels: torch.Tensor  # (examples,) long, 1 = needs edit

    @property
    def lengths(self) -> list[int]:
        return [len(e.input_ids) for e in self.encoded]


# --- identity ------------------------------------------------------------------------------------


def spec_config(spec: TrainSpec) -> dict[str, Any]:
    """The spec as JSON-safe values (paths as strings), as the runs table stores it."""
    config = asdict(spec)
    config["out"] = None if spec.out is None else str(spec.out)
    return config


def _identity(spec: TrainSpec) -> dict[str, Any]:
    """What makes two runs the same run: everything but where the checkpoints go."""
    identity = spec_config(spec)
    del identity["out"]
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

    Resumes from ``<out>/last/`` when it holds a state of the same spec. Bad input raises
    ``EditlensError`` before anything is written. With ``merge=False`` the run is left in
    ``TrainResult.staging`` for the caller to publish (a TUI that holds the store open).
    """
    import torch

    from engine.models import load_model

    _check_spec(spec)
    db = Path(db)
    run_id = run_id_for(spec)
    texts = _read_corpus(db, spec)
    # absolute, so the checkpoint path in the runs table works from any working directory
    out = (
        Path(spec.out) if spec.out is not None else db.parent / "checkpoints" / run_id
    ).absolute()
    _recover(out)
    state = _load_state(out, spec)

    if state is not None and (state["stopped"] or state["epoch"] >= spec.epochs):
        # Trained before but maybe killed before the merge: publish again, load no model.
        config = json.loads((out / BEST / "config.json").read_text())
        shape = (int(config["num_hidden_layers"]), int(config["num_attention_heads"]))
        _publish(db, out, spec, shape, state, merge)
        return _result(out, state, resumed_from=int(state["epoch"]))

    if state is None:
        torch.manual_seed(spec.seed)  # the classifier head's initialisation, then dropout
        loaded = load_model(spec.model, seed=spec.seed)
        loaded.model.config.id2label = {0: "unedited", 1: "needs edit"}
        loaded.model.config.label2id = {"unedited": 0, "needs edit": 1}
        state = {
            "identity": _identity(spec),
            "run_id": run_id,
            "epoch": 0,
            "history": [],
            "best_dev_loss": None,
            "best_epoch": 0,
            "bad_epochs": 0,
            "stopped": False,
            "started": datetime.now().isoformat(),
        }
    else:
        loaded = load_model(str(out / LAST), seed=spec.seed)
    resumed_from = int(state["epoch"])
    model = loaded.model
    pad_id = int(loaded.tokenizer.pad_token_id)
    train_set = _encode(loaded, texts["train"], spec.max_length)
    dev_set = _encode(loaded, texts["dev"], spec.max_length)
    del texts

    steps_per_epoch = -(-len(train_set.encoded) // spec.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr)
    scheduler = _linear_schedule(optimizer, spec.warmup, spec.epochs * steps_per_epoch)
    if resumed_from:
        _load_training_state(out / LAST, optimizer, scheduler)

    epoch = resumed_from
    while epoch < spec.epochs and not state["stopped"]:
        epoch += 1
        row = _train_epoch(model, train_set, optimizer, scheduler, spec, epoch, pad_id, on_progress)
        dev_loss, dev = _evaluate(model, dev_set, spec, pad_id)
        row.update(dev_loss=dev_loss, **{f"dev_{k}": v for k, v in dev.items()})
        state["history"].append(row)
        state["epoch"] = epoch
        best = state["best_dev_loss"]
        if best is None or dev_loss < best:
            state.update(best_dev_loss=dev_loss, best_epoch=epoch, bad_epochs=0)
            meta = _meta(spec, run_id, epoch, dev_loss, dev)
            _atomic_dir(out / BEST, lambda tmp, m=meta: _save_model(loaded, tmp, m))
        else:
            state["bad_epochs"] += 1
        state["stopped"] = state["bad_epochs"] >= max(spec.patience, 1)
        _atomic_dir(out / LAST, lambda tmp: _save_last(loaded, optimizer, scheduler, state, tmp))

    _publish(db, out, spec, (loaded.layers, loaded.heads), state, merge)
    return _result(out, state, resumed_from)


def _result(out: Path, state: dict[str, Any], resumed_from: int) -> TrainResult:
    return TrainResult(
        run_id=state["run_id"],
        checkpoint=out / BEST,
        best_epoch=int(state["best_epoch"]),
        history=list(state["history"]),
        resumed_from_epoch=resumed_from,
        staging=out / STAGING,
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
    ]
    for bad, message in problems:
        if bad:
            raise EditlensError(message)


def _read_corpus(db: Path, spec: TrainSpec) -> dict[str, dict[str, list[Any]]]:
    """Train and dev columns in memory (id order), after the checks that need the data."""
    from engine.store import Store

    with Store(db, read_only=True) as store:
        if not store.has_corpus(spec.corpus):
            names = ", ".join(c.name for c in store.corpora()) or "none"
            raise EditlensError(
                f"corpus {spec.corpus!r} is not in {db} (corpora: {names}); "
                "ingest it first or check the name"
            )
        splits = {
            split: _columns(store.example_batches(spec.corpus, splits=[split], limit=spec.limit))
            for split in ("train", "dev")
        }
    labels = splits["train"]["label"]
    if not labels:
        raise EditlensError(f"corpus {spec.corpus} has no train examples")
    if all(labels):
        raise EditlensError(
            f"corpus {spec.corpus}: the train split has only 'needs edit' examples; "
            "add unedited sentences, e.g. ingest --pairs"
        )
    if not any(labels):
        raise EditlensError(
            f"corpus {spec.corpus}: the train split has only unedited examples; "
            "add sentences that need an edit"
        )
    if not splits["dev"]["label"]:
        raise EditlensError(
            f"corpus {spec.corpus} has no dev examples; early stopping needs them "
            "(ingest without --split assigns 10 % of ids to dev)"
        )
    return splits


def _columns(batches: Any) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {"text": [], "starts": [], "ends": [], "label": []}
    for batch in batches:
        for name, values in columns.items():
            values.extend(batch.column(name).to_pylist())
    return columns


def _encode(loaded: LoadedModel, columns: dict[str, list[Any]], max_length: int) -> _Split:
    import torch

    from engine.align import encode

    encoded: list[Encoded] = []
    for i in range(0, len(columns["text"]), ENCODE_CHUNK):
        part = slice(i, i + ENCODE_CHUNK)
        encoded += encode(
            loaded.tokenizer,
            columns["text"][part],
            columns["starts"][part],
            columns["ends"][part],
            max_length,
        )
    return _Split(encoded, torch.tensor(columns["label"], dtype=torch.long))


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


def _train_epoch(
    model: Any,
    data: _Split,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    spec: TrainSpec,
    epoch: int,
    pad_id: int,
    on_progress: Callable[[TrainProgress], None] | None,
) -> dict[str, Any]:
    """One pass over the train split in shuffled length buckets; timing covers only the steps."""
    import torch
    import torch.nn.functional as F

    from engine.batching import bucketed, collate

    model.train()
    batches = bucketed(data.lengths, spec.batch_size, rng=random.Random(spec.seed + epoch))
    pad_to = spec.max_length if spec.pad_to_max else None
    loss_sum, seen, started = 0.0, 0, time.perf_counter()
    for step, rows in enumerate(batches, 1):
        batch = collate(data.encoded, rows, pad_id, pad_to=pad_to)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        # logits: (batch, 2)
        loss = F.cross_entropy(logits, data.labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        scheduler.step()
        if not math.isfinite(loss.item()):
            raise EditlensError(
                f"training diverged in epoch {epoch} (loss {loss.item()}); lower the learning rate"
            )
        loss_sum += loss.item() * len(rows)
        seen += len(rows)
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            on_progress(
                TrainProgress(
                    epoch, spec.epochs, step, len(batches), loss_sum / seen, seen / elapsed
                )
            )
    seconds = time.perf_counter() - started
    return {
        "epoch": epoch,
        "train_loss": loss_sum / seen,
        "examples_per_s": seen / seconds,
        "seconds": seconds,
    }


def _evaluate(model: Any, data: _Split, spec: TrainSpec, pad_id: int) -> tuple[float, dict]:
    """Mean dev loss and dev classification figures, without gradients or dropout."""
    import torch
    import torch.nn.functional as F

    from engine.batching import bucketed, collate
    from engine.metrics import classification

    model.eval()
    loss_sum = 0.0
    preds = torch.zeros_like(data.labels)  # (examples,)
    pad_to = spec.max_length if spec.pad_to_max else None
    with torch.inference_mode():
        for rows in bucketed(data.lengths, spec.batch_size * 2):
            batch = collate(data.encoded, rows, pad_id, pad_to=pad_to)
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
            loss_sum += F.cross_entropy(logits, data.labels[rows], reduction="sum").item()
            preds[rows] = logits.argmax(dim=-1)
    figures = classification(data.labels.numpy() == 1, preds.numpy() == 1)
    return loss_sum / len(data.encoded), asdict(figures)


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


def _save_last(
    loaded: LoadedModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    state: dict[str, Any],
    directory: Path,
) -> None:
    """Everything a resumed run needs, as safetensors and JSON (never pickles); state.json last."""
    import torch
    from safetensors.torch import save_file

    spec = state["identity"]
    meta = {"model": model_label(spec["model"]), "corpus": spec["corpus"], "epoch": state["epoch"]}
    _save_model(loaded, directory, meta)
    tensors, rest = _flatten_optimizer(optimizer.state_dict())
    save_file(tensors, str(directory / OPTIMIZER_TENSORS))
    (directory / OPTIMIZER_JSON).write_text(json.dumps(rest))
    (directory / SCHEDULER_JSON).write_text(json.dumps(scheduler.state_dict()))
    save_file({"torch": torch.get_rng_state()}, str(directory / RNG_TENSORS))
    (directory / STATE_FILE).write_text(json.dumps(state, indent=1))


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors as ``state.<param>.<key>`` for safetensors; groups and plain values as JSON."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for param, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param}.{key}"] = value.detach().contiguous()
            else:
                plain.setdefault(str(param), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "plain": plain}


def _load_training_state(
    directory: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
) -> None:
    import torch
    from safetensors.torch import load_file

    rest = json.loads((directory / OPTIMIZER_JSON).read_text())
    state: dict[int, dict[str, Any]] = {
        int(param): dict(values) for param, values in rest["plain"].items()
    }
    for name, tensor in load_file(str(directory / OPTIMIZER_TENSORS)).items():
        _, param, key = name.split(".", 2)
        state.setdefault(int(param), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})
    scheduler.load_state_dict(json.loads((directory / SCHEDULER_JSON).read_text()))
    torch.set_rng_state(load_file(str(directory / RNG_TENSORS))["torch"])


_LAST_FILES = (
    "model.safetensors",
    OPTIMIZER_TENSORS,
    OPTIMIZER_JSON,
    SCHEDULER_JSON,
    RNG_TENSORS,
    STATE_FILE,
)


def _load_state(out: Path, spec: TrainSpec) -> dict[str, Any] | None:
    """The saved state of this spec, None when there is none to trust; another spec's refuses."""
    last = out / LAST
    try:
        state = json.loads((last / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if state.get("identity") != _identity(spec):
        raise EditlensError(
            f"{out} holds the state of another training run (run {state.get('run_id')}); "
            "pass another --out or remove that directory"
        )
    complete = all((last / name).is_file() for name in _LAST_FILES)
    if not complete or not (out / BEST / "model.safetensors").is_file():
        return None  # not written by us in one piece: start afresh and overwrite it
    return state


def _atomic_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Write a directory beside ``target`` and swap it in by renames: readers see old or new."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)  # a kill before this line leaves .old, which _recover puts back
    shutil.rmtree(old, ignore_errors=True)


def _recover(out: Path) -> None:
    """Undo what a kill inside ``_atomic_dir`` left: half-written temps go, a lone .old returns."""
    for name in (LAST, BEST):
        shutil.rmtree(out / f".{name}.tmp", ignore_errors=True)
        old = out / f".{name}.old"
        if old.is_dir():
            if (out / name).exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.rename(out / name)


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
        config=spec_config(spec),
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

"""A training run's state on disk: what ``<out>/last/`` holds besides the model (optimizer,
scheduler, loss scaler, every rank's generator states), and how a directory is replaced whole.

Everything is safetensors or JSON, never pickles; a directory is written beside its target and
renamed into place, so a kill at any moment leaves the old state or the new one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import EditlensError

if TYPE_CHECKING:
    import torch

    from engine.device import Processes

LAST, BEST = "last", "best"
STATE_FILE = "state.json"  # written last: a last/ without it is never trusted
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
SCHEDULER_JSON = "scheduler.json"
SCALER_JSON = "scaler.json"
RNG_TENSORS = "rng.safetensors"
# what state.json must hold, and as what, for a run to resume from it
STATE_FIELDS = {
    "identity": dict,
    "run_id": str,
    "epoch": int,
    "history": list,
    "best_epoch": int,
    "bad_epochs": int,
    "stopped": bool,
    "started": str,
}


def afresh(directory: Path) -> str:
    """What to do about a saved ``last/`` or ``best/`` that cannot be used: without it, the same
    command starts the run afresh."""
    return f"remove {directory} to start the run afresh, or pass another --out"


def damaged(path: Path, problem: str) -> EditlensError:
    """The one line for a file of a run's saved state that cannot be used."""
    return EditlensError(f"{path}: {problem}; {afresh(path.parent)}")


def check_writable(out: Path) -> None:
    """Refuse, before any training, a checkpoint directory that cannot be made or written; the
    probe leaves nothing behind, so a run refused later for another reason writes nothing."""
    existing = out
    while not existing.exists():  # the folder the first checkpoint would be made in
        existing = existing.parent
    if not existing.is_dir():
        what = "it" if existing == out else str(existing)
        raise EditlensError(f"{out}: {what} is a file, not a folder; pass another --out")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise EditlensError(
            f"{out}: cannot write checkpoints there ({_reason(error)}); pass another --out"
        ) from None


def read_state(directory: Path) -> dict[str, Any] | None:
    """``directory/state.json`` (the last thing written), None when there is none; a file that
    is not a JSON object with an identity is refused rather than silently trained over."""
    path = directory / STATE_FILE
    if not path.exists():
        return None
    state = read_json(path)
    if not isinstance(state.get("identity"), dict):
        raise damaged(path, "not a training state (no identity object)")
    return state


def check_state(directory: Path, state: dict[str, Any]) -> None:
    """A state of this run must hold every field a resumed run reads, each of its type."""
    wrong = [k for k, kind in STATE_FIELDS.items() if not isinstance(state.get(k), kind)]
    if wrong:
        problem = f"not a training state ({', '.join(wrong)} missing or malformed)"
        raise damaged(directory / STATE_FILE, problem)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object of a run's saved state, or the one line that names the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise damaged(path, f"cannot be read ({_reason(error)})") from None
    if not isinstance(value, dict):
        raise damaged(path, "cannot be read (not a JSON object)")
    return value


def saved_shape(directory: Path) -> tuple[int, int]:
    """(layers, heads) of the model saved in ``directory``, from its config.json."""
    path = directory / "config.json"
    config = read_json(path)
    try:
        return int(config["num_hidden_layers"]), int(config["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        raise damaged(path, "has no number of layers and heads") from None


def check_tensors(directory: Path) -> None:
    """Every safetensors file of ``directory`` whole, from their headers alone: checked before
    the model loads, so a file cut short is named as training state, not as model weights."""
    from engine.models import check_safetensors

    for name in (n for n in LAST_FILES if n.endswith(".safetensors")):
        path = directory / name
        try:
            check_safetensors(path, advice=afresh(directory))
        except OSError as error:
            raise damaged(path, _reason(error)) from None


def rng_states(procs: Processes) -> dict[str, torch.Tensor]:
    """Every rank's generator states (dropout), as ``torch.<rank>`` and ``cuda.<rank>``."""
    import torch

    states = {"torch": torch.get_rng_state()}
    if procs.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(procs.device)
    return {
        f"{name}.{rank}": row.cpu().contiguous()
        for name, state in states.items()
        for rank, row in enumerate(procs.gather(state))
    }


def restore_rng(states: dict[str, torch.Tensor], procs: Processes) -> None:
    """This rank's generators as saved (rank 0's when the job had fewer ranks; ``torch``: older
    checkpoints)."""
    import torch

    for name in ("torch", "cuda"):
        keys = (f"{name}.{procs.rank}", f"{name}.0", name)
        state = next((states[key] for key in keys if key in states), None)
        if state is None:
            continue
        if name == "torch":
            torch.set_rng_state(state)
        elif procs.device.type == "cuda":
            torch.cuda.set_rng_state(state, procs.device)


def flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors as ``state.<param>.<key>`` for safetensors; groups and plain values as JSON."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for param, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(param), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "plain": plain}


def load_training_state(
    directory: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    scaler: torch.amp.GradScaler,
    procs: Processes,
) -> None:
    """Put the optimizer, scheduler, scaler and generators back as ``directory`` saved them; a
    file that cannot be read, or does not fit this run, is one ``EditlensError`` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    reading = directory / OPTIMIZER_JSON  # the file being read, for the error
    try:
        rest = json.loads(reading.read_text())
        state: dict[int, dict[str, Any]] = {
            int(param): dict(values) for param, values in rest["plain"].items()
        }
        reading = directory / OPTIMIZER_TENSORS
        for name, tensor in load_file(str(reading)).items():
            _, param, key = name.split(".", 2)
            state.setdefault(int(param), {})[key] = tensor
        reading = directory / OPTIMIZER_JSON  # its groups must fit this run's parameters
        # load_state_dict moves every moment onto its parameter's device
        optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})
        reading = directory / SCHEDULER_JSON
        scheduler.load_state_dict(json.loads(reading.read_text()))
        reading = directory / SCALER_JSON
        scaling = json.loads(reading.read_text()) if reading.is_file() else {}  # {}: no fp16
        if scaling and scaler.is_enabled():
            scaler.load_state_dict(scaling)
        reading = directory / RNG_TENSORS
        restore_rng(load_file(str(reading)), procs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError,
            SafetensorError) as error:  # fmt: skip
        raise damaged(reading, f"cannot be resumed from ({_reason(error)})") from None


LAST_FILES = (
    "model.safetensors",
    OPTIMIZER_TENSORS,
    OPTIMIZER_JSON,
    SCHEDULER_JSON,
    RNG_TENSORS,
    STATE_FILE,
)  # not SCALER_JSON: states saved before it existed still resume


def atomic_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Write a directory beside ``target`` and swap it in by renames: readers see old or new."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)  # a kill before this line leaves .old, which recover puts back
    shutil.rmtree(old, ignore_errors=True)


def epoch_dir(epoch: int) -> str:
    """Where ``TrainSpec.keep_epochs`` puts epoch ``epoch``'s model (1-based)."""
    return f"epoch-{epoch}"


def epoch_checkpoints(out: Path) -> dict[int, Path]:
    """The kept epoch models under ``out`` that were written whole, by epoch."""
    found = {}
    for path in out.glob("epoch-*"):
        number = path.name.removeprefix("epoch-")
        if number.isdigit() and (path / "model.safetensors").is_file():
            found[int(number)] = path
    return dict(sorted(found.items()))


def recover(out: Path) -> None:
    """Undo what a kill inside ``atomic_dir`` left: half-written temps go, a lone .old returns."""
    for tmp in out.glob(".*.tmp"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in out.glob(".*.old"):
        if old.is_dir():
            target = out / old.name[1:].removesuffix(".old")
            if target.exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.rename(target)


def _reason(error: BaseException) -> str:
    """Why reading failed, in a few words (the path is named by the caller)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__

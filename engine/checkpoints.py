"""A training run's state on disk: what ``<out>/last/`` holds besides the model (optimizer,
scheduler, loss scaler, every rank's generator states), and how a directory is replaced whole.

Everything is safetensors or JSON, never pickles; a directory is written beside its target and
renamed into place, so a kill at any moment leaves the old state or the new one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from safetensors.torch import load_file

    rest = json.loads((directory / OPTIMIZER_JSON).read_text())
    state: dict[int, dict[str, Any]] = {
        int(param): dict(values) for param, values in rest["plain"].items()
    }
    for name, tensor in load_file(str(directory / OPTIMIZER_TENSORS)).items():
        _, param, key = name.split(".", 2)
        state.setdefault(int(param), {})[key] = tensor
    # load_state_dict moves every moment onto its parameter's device
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})
    scheduler.load_state_dict(json.loads((directory / SCHEDULER_JSON).read_text()))
    scaler_file = directory / SCALER_JSON
    scaling = json.loads(scaler_file.read_text()) if scaler_file.is_file() else {}  # {}: no fp16
    if scaling and scaler.is_enabled():
        scaler.load_state_dict(scaling)
    restore_rng(load_file(str(directory / RNG_TENSORS)), procs)


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

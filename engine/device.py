"""Where the compute runs: the device, the numeric precision, and the processes of a job.

``auto`` takes the GPU when there is one (CUDA, else Apple's MPS), else the CPU; asking for a
device the machine lacks is one line of ``EditlensError``, not a traceback. Precision: fp32
everywhere by default; bf16 through autocast (GPUs, and the CPU); fp16 through autocast with a
gradient scaler, on GPUs only (CPU autocast has no fp16 kernels worth having). Whatever the compute
precision, what leaves the model for the store is float32 (``to_float32``).

Several processes (``torchrun --nproc_per_node N`` or ``accelerate launch``) are recognised from
the launcher's environment; Hugging Face Accelerate then sets up the process group (gloo on the
CPU, NCCL on GPUs) and wraps the model in DistributedDataParallel. Nothing here is home-made
distribution: without a launcher a job is one plain process and Accelerate is not imported.
"""

from __future__ import annotations

import os
import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import EditlensError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # what --device accepts, for help texts
PRECISIONS = ("fp32", "bf16", "fp16")
DEFAULT_DEVICE = "auto"
DEFAULT_PRECISION = "fp32"


def is_device_name(name: str) -> bool:
    """Whether ``--device`` accepts ``name``, whatever this machine has (no torch needed, so a
    form can check it as it is typed)."""
    return re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]+)?", name.strip().lower()) is not None


def resolve_device(name: str) -> torch.device:
    """The device ``name`` means on this machine; a device it does not have is refused."""
    import torch

    if not is_device_name(name):
        raise EditlensError(f"device {name!r}: use one of {', '.join(DEVICES)}")
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise EditlensError(
                "device mps: this machine has no Apple GPU; use --device auto or cpu"
            )
        return torch.device("mps")
    _, _, index = name.partition(":")  # cuda or cuda:N
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise EditlensError(
            f"device {name}: no CUDA GPU is visible (torch {torch.__version__} is {build}); "
            "use --device auto or cpu"
        )
    count = torch.cuda.device_count()
    number = int(index) if index else torch.cuda.current_device()
    if number >= count:
        raise EditlensError(
            f"device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
        )
    return torch.device("cuda", number)


def _mps_available() -> bool:
    import torch

    return bool(torch.backends.mps.is_available())


def check_precision(device: torch.device, precision: str) -> None:
    """Refuse, in one line, a precision the device cannot compute in."""
    import torch

    if precision not in PRECISIONS:
        raise EditlensError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise EditlensError(
            "precision fp16 needs a GPU; on the CPU use --precision bf16 or fp32 (the default)"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise EditlensError(
            f"precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
            "use --precision fp16 or fp32"
        )


def autocast(device: torch.device, precision: str) -> Any:
    """The context that computes in ``precision`` (a no-op for fp32)."""
    import torch

    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 training; disabled (every call a pass-through) otherwise."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's weights are (the CPU for a model without any, such as a test's stub)."""
    import torch

    first = next(model.parameters(), None)
    return torch.device("cpu") if first is None else first.device


def to_float32(tensor: torch.Tensor) -> torch.Tensor:
    """What the store receives: float32 on the CPU, whatever the compute dtype and device."""
    import torch

    return tensor.detach().to("cpu", torch.float32)


# --- processes -----------------------------------------------------------------------------------


# How long a rank waits at a barrier: while rank 0 alone copies an evaluation's examples into its
# staging store or folds the shards of a killed run into it, the others wait, and on a corpus of
# a million sentences that can outlast PyTorch's default (10 minutes for NCCL).
BARRIER_TIMEOUT = timedelta(hours=2)


def launched_processes() -> int:
    """How many processes the launcher started (1 without torchrun or accelerate launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass
class Processes:
    """This process's place in the job: its rank, how many there are, and its device."""

    rank: int
    world: int
    device: torch.device
    accelerator: Any = None  # accelerate.Accelerator when world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes checkpoints and the store."""
        return self.rank == 0

    @property
    def device_name(self) -> str:
        """The device as the run's config records it: ``cpu``, ``cuda:0``, ``mps``."""
        if self.device.type == "cuda":
            return f"cuda:{self.device.index or 0}"
        return self.device.type  # Accelerate names the CPU of a rank "cpu:<rank>"

    def wrap(self, model: Any) -> Any:
        """The model as training calls it: DistributedDataParallel under several processes."""
        if self.world == 1:
            return model
        return self.accelerator.prepare_model(model)

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over every process (the values themselves with one process)."""
        if self.world == 1:
            return values
        import torch

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        return self.accelerator.reduce(tensor, reduction="sum").tolist()

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's equal-sized ``tensor`` stacked by rank: (processes, *tensor.shape)."""
        if self.world == 1:
            return tensor.unsqueeze(0)
        gathered = self.accelerator.gather(tensor.to(self.device).unsqueeze(0))
        return gathered.to(tensor.device)


def start_processes(device_name: str) -> Processes:
    """This process's rank and device; under a launcher, the process group through Accelerate.

    Under several processes each rank takes the device its launcher assigned (``cuda:<local
    rank>``), so only ``auto``, ``cuda`` and ``cpu`` make sense there.
    """
    world = launched_processes()
    if world == 1:
        return Processes(rank=0, world=1, device=resolve_device(device_name))
    requested = resolve_device(device_name)  # refuses a device the machine does not have
    if requested.type == "cuda" and ":" in device_name:
        raise EditlensError(
            f"device {device_name}: under {world} processes each rank takes the GPU of its local "
            "rank; pass --device cuda or auto"
        )
    if requested.type == "mps":
        raise EditlensError("device mps: one process only; run without torchrun or use cpu")
    from accelerate import Accelerator, InitProcessGroupKwargs

    accelerator = Accelerator(
        cpu=requested.type == "cpu",
        device_placement=False,
        mixed_precision="no",
        kwargs_handlers=[InitProcessGroupKwargs(timeout=BARRIER_TIMEOUT)],
    )
    return Processes(
        rank=accelerator.process_index,
        world=accelerator.num_processes,
        device=accelerator.device,
        accelerator=accelerator,
    )

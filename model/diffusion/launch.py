"""Where a training run runs: torchrun's processes (``setup_distributed``) and a graceful stop on
SIGTERM / SIGINT (``GracefulStop``). Shared by the diffusion, portrait and restore trainers.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun launch: its rank, the number of processes, its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None) -> Dist:
    """Read torchrun's environment; start the process group when there is more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:  # a bare "cuda": this process's GPU (set_device refuses a device without index)
            dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, dev)


class GracefulStop:
    """SIGTERM/SIGINT during training: finish the step, save, and return (the run resumes later).

    Only in the main thread of the main process (signal handlers cannot be set elsewhere); a
    second signal falls through to the previous handler, so a stuck run can still be killed.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.requested = ""
        self._previous: dict[int, object] = {}
        if not enabled or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second signal: stop now
            self.restore()
            signal.raise_signal(signum)
            return
        self.requested = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

"""Run a training function in two CPU processes the way ``torchrun`` starts them (gloo backend)."""

from __future__ import annotations

import os
from typing import Callable

import torch

from tests.integration.processes import free_port


def run_gloo(train: Callable, *args, world: int = 2) -> None:
    """``train(*args)`` in ``world`` spawned processes with torchrun's environment (rank, world size, a
    free port); ``train`` must be a module-level function so that the children can import it."""
    import torch.multiprocessing as mp

    mp.start_processes(_rank, args=(world, free_port(), train, args), nprocs=world, join=True, start_method="spawn")


def _rank(rank: int, world: int, port: int, train: Callable, args: tuple) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train(*args)
    dist.destroy_process_group()

"""Splitting one run across processes started by `accelerate launch` or `torchrun`.

Work units are split deterministically by position (rank r takes units r, r + N, r + 2N, ...); every
process writes to the same results store (SQLite in WAL mode serialises the writers), and the main process
alone writes the summary, the CSVs and the report once all have finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place in the run: rank and world size (0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def take(self, items: Sequence[T]) -> list[T]:
        """This process's share of `items` (a deterministic, disjoint, complete split)."""
        return list(items[self.rank :: self.world])

    def device(self, device: str) -> str:
        """Pin each process to its own GPU when the config says plain 'cuda'."""
        return f"cuda:{self.local_rank}" if self.distributed and device == "cuda" else device

    def barrier(self) -> None:
        """Wait for every process (a no-op in a single process)."""
        if self.distributed:
            from accelerate import PartialState

            PartialState().wait_for_everyone()


def current_shard() -> Shard:
    """Read the launcher's environment (RANK / WORLD_SIZE / LOCAL_RANK, set by accelerate and torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    from accelerate import PartialState

    state = PartialState(cpu=not _cuda_requested())
    return Shard(rank=state.process_index, world=state.num_processes, local_rank=state.local_process_index)


def _cuda_requested() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true")

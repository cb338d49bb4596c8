"""Meta-training over several processes with torch.distributed (launched by torchrun).
Torch loads only when a process group is used, so the command line can ask which rank it is at once.

MAML's meta-batch is a mean over tasks. Every rank draws the same tasks and the same random numbers
(the whole meta-batch's action noise and reset seeds), samples only its contiguous share of the
tasks, and every mean over tasks the meta-update needs becomes the rank's sum over its share divided
by the number of tasks, summed over ranks by one all-reduce. So every rank takes the same step, and a
run gives the same trajectories, and the same metrics up to the order of floating-point sums, for
any number of ranks. One process is the case ``Ranks()``: no process group, no communication.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlmaml.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class Traffic:
    """What this process's all-reduces of tensors have sent so far (for the metrics and the scaling model)."""

    calls: int = 0
    bytes: int = 0


TRAFFIC = Traffic()


class RanksDiverged(UserError, RuntimeError):
    """The ranks' parameters differ: a rank took another step than the others."""


@dataclass(frozen=True)
class Ranks:
    """This process's rank among ``size`` processes that train one run together."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that reads and writes the run folder and prints."""
        return self.rank == 0

    def share(self, count: int) -> slice:
        """This rank's contiguous share of ``count`` items (tasks); shares differ by at most one item."""
        return slice(self.rank * count // self.size, (self.rank + 1) * count // self.size)

    def sum(self, value: Tensor) -> Tensor:
        """``value`` summed over ranks (a new tensor; ``value`` itself with one process)."""
        if self.size == 1:
            return value
        import torch.distributed

        total = value.detach().cpu().clone()  # gloo reduces CPU tensors
        torch.distributed.all_reduce(total)
        TRAFFIC.calls += 1
        TRAFFIC.bytes += total.numel() * total.element_size()
        return total.to(value.device)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if self.size == 1:
            return value
        import torch.distributed

        holder = [value]
        torch.distributed.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.size == 1:
            return [value]
        import torch.distributed

        values: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(values, value)
        return values

    def require_identical(self, vector: Tensor, what: str) -> None:
        """Raise :class:`RanksDiverged` unless ``vector`` [D] is bitwise the same on every rank."""
        if self.size == 1:
            return
        import torch
        import torch.distributed

        high, low = vector.detach().cpu().clone(), vector.detach().cpu().clone()
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        TRAFFIC.calls += 2
        TRAFFIC.bytes += 2 * vector.numel() * vector.element_size()
        if not torch.equal(high, low):
            raise RanksDiverged(f"the ranks' {what} differ (at {int((high != low).sum())} of {vector.numel()} "
                                "entries): the ranks no longer take the same steps")


LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun sets for every process it starts."""


def launched_by_torchrun() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets its variables)."""
    return all(name in os.environ for name in LAUNCHER_VARIABLES)


def join() -> Ranks:
    """Join the process group torchrun describes (gloo; NCCL is not used: the meta-update's tensors are
    small and sampling runs on CPU) and return this process's rank; ``Ranks()`` without torchrun."""
    if not launched_by_torchrun():
        return Ranks()
    import torch.distributed

    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="gloo")
    return Ranks(torch.distributed.get_rank(), torch.distributed.get_world_size())


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if "torch" not in sys.modules:  # torch never loaded: no group was joined
        return
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def cores_per_process() -> int:
    """The CPU cores this process may use: the machine's, shared by the ranks torchrun started on it."""
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))

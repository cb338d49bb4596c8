"""Conjugate gradient for the TRPO step direction."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iterations: int = 10,
                       tolerance: float = 1e-10) -> tuple[Tensor, Tensor]:
    """Approximately solve A x = b for symmetric positive-definite A given as ``matvec``; b [D].

    Returns ``x`` and ``A x`` (as ``b - residual``, so callers need no extra product).
    """
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    rr = residual @ residual
    for _ in range(iterations):
        if rr <= tolerance:
            break
        a_dir = matvec(direction)
        alpha = rr / (direction @ a_dir)
        x = x + alpha * direction
        residual = residual - alpha * a_dir
        rr_new = residual @ residual
        direction = residual + (rr_new / rr) * direction
        rr = rr_new
    return x, b - residual

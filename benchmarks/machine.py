"""What a benchmark's numbers were measured on, for its --json record (shared by the benchmarks here)."""

from __future__ import annotations

import os
import platform

import torch


def cpu_model() -> str:
    """The processor's name as the kernel reports it (platform.processor() is often empty on Linux)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Processor, cores, torch version and threads."""
    return {"processor": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}

"""Small helpers shared by the training and prediction entry points."""

from __future__ import annotations

import os

import torch


def pooled_cpu_processes() -> bool:
    """True for one of several processes (torchrun, `accelerate launch --multi_gpu`) on a machine without a GPU.

    Accelerate joins CPU-only processes into one group (over gloo) only when told to use the CPU, and
    `accelerate launch --cpu` starts a single process; without this each process would work alone on all the
    data. Pass the result as Accelerate's `cpu=`.
    """
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()

"""Small helpers shared by the training and prediction entry points."""

from __future__ import annotations

import os

import torch


def accelerate_on_cpu() -> bool:
    """What to pass as Accelerate's `cpu=`: True where `accelerate launch --cpu` asked for the CPU, or for one of
    several processes (torchrun, `accelerate launch --multi_gpu`) on a machine without a GPU.

    Accelerate joins CPU-only processes into one group (over gloo) only when told to use the CPU, and
    `accelerate launch --cpu` starts a single process; without this each process would work alone on all the
    data. `PartialState` does not read ACCELERATE_USE_CPU itself (only `Accelerator` does), hence the flag here.
    """
    from accelerate.utils import parse_flag_from_env

    pooled = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    return parse_flag_from_env("ACCELERATE_USE_CPU") or pooled

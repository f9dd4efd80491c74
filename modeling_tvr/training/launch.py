"""The Accelerator of a training run, and the warning when `accelerate launch` was asked for several processes but
started one (what `--cpu`, or a machine without GPU, does unless `--multi_gpu` is given)."""

import importlib.util
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from accelerate import Accelerator

from .arguments import TrainArguments

__all__ = ["launcher_started_one_of_several", "make_accelerator"]

# The run's messages go to one logger, whichever module of the run writes them.
logger = logging.getLogger("train")

# What torchrun, mpirun and Intel MPI give every process they start: the size of the group.
_GROUP_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launcher_started_one_of_several(num_processes: int, environ: Mapping[str, str]) -> bool:
    """Whether `accelerate launch` was asked for several processes (or machines) but started this one alone.

    `accelerate launch` hands a run to its simple launcher with `--cpu`, and on a machine without GPU unless
    `--multi_gpu` is given; that launcher runs the script once, whatever `--num_processes` says. It marks the process
    with `ACCELERATE_USE_CPU` (set by no other launcher) and sets up a rendezvous (`MASTER_ADDR`, `MASTER_PORT`) only
    when asked for more than one process or machine. The launchers that do start several processes (torchrun behind
    `--multi_gpu`, mpirun) give each the size of the group, from which Accelerate counts them. The count asked for is
    not in the environment, so the warning cannot name it.

    Args:
        num_processes (`int`): The processes Accelerate counts in this run.
        environ (`Mapping[str, str]`): The environment this process started with.
    """
    simple_launcher = "ACCELERATE_USE_CPU" in environ
    rendezvous = "MASTER_PORT" in environ
    started_as_group = any(name in environ for name in _GROUP_SIZE_VARIABLES)
    return num_processes == 1 and simple_launcher and rendezvous and not started_as_group


def make_accelerator(train_args: TrainArguments) -> Accelerator:
    """The Accelerator of the run, with logging set up and a warning when a CPU launch started fewer processes.

    Args:
        train_args (`TrainArguments`): `mixed_precision`, `gradient_accumulation_steps` and `output_dir` (the
            trackers' folder).
    """
    trackers = "tensorboard" if importlib.util.find_spec("tensorboard") else None
    environ = dict(os.environ)  # as launched: Accelerate sets rendezvous variables of its own once it starts a group
    # On a machine without accelerator Accelerate only treats several processes (torchrun, `accelerate launch
    # --multi_gpu`) as distributed when told it runs on CPU; otherwise every process would think it is alone.
    accelerator = Accelerator(
        cpu=not torch.accelerator.is_available(),
        mixed_precision=train_args.mixed_precision,
        gradient_accumulation_steps=train_args.gradient_accumulation_steps,
        log_with=trackers,
        project_dir=str(Path(train_args.output_dir)),
    )
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING, format="%(message)s")
    if launcher_started_one_of_several(accelerator.num_processes, environ):
        logger.warning(
            "accelerate launch was asked for several processes but 1 started: with --cpu (or no GPU) it starts one. "
            "For several CPU processes use `accelerate launch --multi_gpu --num_processes N train.py` (gloo) or "
            "`torchrun --nproc_per_node N train.py`."
        )
    return accelerator

"""train.py killed without warning right after optimiser step N, as a scheduler or the out-of-memory killer would.

Run by tests/test_train_script.py as `python tests/train_killed_at_step.py N TRAIN_ARGS...`; the tests then resume
the run from its checkpoints and compare it with an uninterrupted one.
"""

import os
import signal
import sys

from modeling_tvr.training.checkpoints import TrainingPosition
from modeling_tvr.training.command_line import build_parser, parse_arguments
from modeling_tvr.training.loop import StepCallback
from modeling_tvr.training.run import run


def kill_at(step: int) -> StepCallback:
    def callback(position: TrainingPosition) -> None:
        if position.step == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return callback


if __name__ == "__main__":
    step = int(sys.argv.pop(1))
    # What train.py's main runs, with the callback that kills the process.
    run(*parse_arguments(build_parser()), callbacks=[kill_at(step)])

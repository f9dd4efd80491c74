"""train.py killed without warning right after optimiser step N, as a scheduler or the out-of-memory killer would.

Run by tests/test_train_script.py as `python tests/train_killed_at_step.py N TRAIN_ARGS...`; the tests then resume
the run from its checkpoints and compare it with an uninterrupted one.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train  # noqa: E402
from modeling_tvr.training.checkpoints import TrainingPosition  # noqa: E402


def kill_at(step: int) -> train.StepCallback:
    def callback(position: TrainingPosition) -> None:
        if position.step == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return callback


if __name__ == "__main__":
    step = int(sys.argv.pop(1))
    train.main(callbacks=[kill_at(step)])

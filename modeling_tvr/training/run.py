"""A whole training run once its arguments are parsed (`run`): the Accelerator, the data, the model and processor,
the frame cache, training, the test evaluation and the outputs; bad input ends it with one line and no empty output
folder."""

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import DatasetDict

from .. import DRLModel, DRLProcessor
from ..conversion import OfficialStateDictError
from ..conversion.checkpoint_files import CheckpointLoadError
from ..frame_cache import FrameCache
from .arguments import DataArguments, ModelArguments, TrainArguments, data_label, data_source
from .cached_frames import fill_for_rows, without_undecodable
from .data import format_split_uses, load_splits, split_uses
from .evaluation import report_test_metrics
from .finite import NonFiniteError
from .launch import make_accelerator
from .loop import StepCallback, prepare_training
from .model_setup import VOCABULARY_FILE, build_model_and_processor
from .outputs import save_outputs

__all__ = ["SETUP_ERRORS", "RunInputs", "announce_splits", "load_data", "run", "set_up_run", "train_and_evaluate"]

# The run's messages go to one logger, whichever module of the run writes them.
logger = logging.getLogger("train")

# Errors that mean the user's input is wrong, reported as one line before anything trains.
SETUP_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, OfficialStateDictError, CheckpointLoadError)


def run(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    callbacks: Sequence[StepCallback] = (),
) -> None:
    """Trains and / or evaluates as the arguments say, in every process of the launch.

    Args:
        model_args (`ModelArguments`): The model options, presets resolved.
        data_args (`DataArguments`): The data options, presets resolved.
        train_args (`TrainArguments`): The training options, presets resolved.
        callbacks (`Sequence[StepCallback]`, *optional*): Go to the training loop (see `TrainingLoop`).

    Raises:
        SystemExit: the input is wrong or the run diverged (one line starting with `error: `).
    """
    accelerator = make_accelerator(train_args)
    set_seed(train_args.seed)
    with removed_if_left_empty(Path(train_args.output_dir)):
        try:
            train_and_evaluate(model_args, data_args, train_args, accelerator, callbacks)
        except NonFiniteError as error:
            # A diverged run: one line naming the step and what to change; nothing non-finite was saved or pushed.
            raise SystemExit(f"error: {error}") from None


@contextlib.contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Creates `folder` (and its missing parents) for the run; if the run fails, removes those of them it created that
    are still empty, so a failed run leaves no empty output folder. A folder that existed before, or that holds
    anything, stays (`rmdir` removes only empty folders)."""
    created = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def load_data(data_args: DataArguments, accelerator: Accelerator) -> tuple[DatasetDict, str]:
    """The data's splits, built or cached by one process while the others wait, and the split to report.

    Args:
        data_args (`DataArguments`): The data options, presets resolved.
        accelerator (`Accelerator`): The run's; its main process builds the data first.

    Raises:
        ValueError: the data or its options are wrong (`modeling_tvr.training.data.DataError`: one line).
        FileNotFoundError: a folder or file that is not there.
    """
    source = data_source(data_args)
    with accelerator.main_process_first():
        data = load_splits(source)
    return data, "test" if "test" in data else next(iter(data))


def open_frame_cache(
    processor: DRLProcessor, row_lists: list[list], accelerator: Accelerator, data_args: DataArguments
) -> tuple[FrameCache, list[list]]:
    """The frame cache `--frame_cache` for this run's processor, filled with the clips of `row_lists` (the rows the
    run reads), and those rows without the clips that cannot be decoded when `--missing_videos skip` asks so.

    Args:
        processor (`DRLProcessor`): Its frame settings key the cache.
        row_lists (`list[list]`): The rows of each use (training, validation, test).
        accelerator (`Accelerator`): The run's; its main process fills the cache first.
        data_args (`DataArguments`): `frame_cache`, `num_workers` and `missing_videos`.

    Raises:
        ValueError: a clip cannot be decoded and --missing_videos is not skip (one line naming the first files).
    """
    cache = FrameCache(data_args.frame_cache, processor)
    report = fill_for_rows(cache, row_lists, accelerator, data_args.num_workers)
    logger.info("Frame cache %s: %s.", cache.path, report)
    # The toy's videos are generated, so --missing_videos is refused for it and the error suggests nothing.
    skip_allowed = bool(data_args.dataset_name) or (data_args.benchmark or "toy") != "toy"
    return cache, without_undecodable(row_lists, report.failed, data_args.missing_videos, skip_allowed)


def check_batches(train_rows: list, train_args: TrainArguments) -> None:
    """Refuses a run that could never take a step: the loader drops incomplete batches, so a training set smaller
    than one batch (or none, with --max_steps) would loop over empty epochs. A run without a train split and without
    --max_steps stays allowed: it takes no step and evaluates.

    Raises:
        ValueError: the training rows cannot fill one batch (a usage error).
    """
    if not train_rows and train_args.max_steps > 0:
        raise ValueError("the data has no train split to train on; give one, or pass --eval_only to only evaluate")
    if 0 < len(train_rows) < train_args.batch_size:
        raise ValueError(
            f"{len(train_rows)} training pair(s), fewer than one batch (--batch_size {train_args.batch_size}); pass "
            f"--batch_size {len(train_rows)} or less, or add captions"
        )


def announce_splits(data: DatasetDict, eval_split: str, data_args: DataArguments, train_args: TrainArguments) -> dict:
    """Prints which split is used for what and where each came from; returns it for metrics.json.

    Args:
        data (`DatasetDict`): The data's splits.
        eval_split (`str`): The split the metrics are reported on.
        data_args (`DataArguments`): The data options (its name in the lines).
        train_args (`TrainArguments`): Whether the run trains and evaluates.
    """
    training = not train_args.eval_only
    evaluating = train_args.do_eval or train_args.eval_only
    uses = split_uses(data, eval_split, train=training, evaluate=evaluating)
    logger.info("%s", format_split_uses(data_label(data_args), uses, training))
    return uses


@dataclass
class RunInputs:
    """What a run works on once set up: the data, the rows of each use, the model, its processor and the frame cache
    (None without --frame_cache)."""

    data: DatasetDict
    eval_split: str
    train_rows: list
    validation_rows: list
    test_rows: list
    model: DRLModel
    processor: DRLProcessor
    frames: FrameCache | None = None


def set_up_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    accelerator: Accelerator,
    evaluating: bool,
) -> RunInputs:
    """Loads the data, builds the model and processor and, with --frame_cache, fills the cache.

    Args:
        model_args (`ModelArguments`): The model options.
        data_args (`DataArguments`): The data options.
        train_args (`TrainArguments`): The training options.
        accelerator (`Accelerator`): The run's.
        evaluating (`bool`): Whether the run evaluates on the test split (its rows are read then).

    Raises:
        One of `SETUP_ERRORS`: the input is wrong (one line for the user).
    """
    data, eval_split = load_data(data_args, accelerator)
    train_rows = list(data["train"]) if "train" in data else []
    validation_rows = list(data["validation"]) if "validation" in data and not train_args.eval_only else []
    test_rows = list(data[eval_split]) if evaluating else []
    if not train_args.eval_only:  # before the model: a from-scratch vocabulary would be written in output_dir
        check_batches(train_rows, train_args)
    vocabulary = Path(train_args.output_dir) / VOCABULARY_FILE
    earlier_vocabulary = vocabulary.exists()
    model, processor = build_model_and_processor(
        model_args, data_args, train_rows, Path(train_args.output_dir), accelerator
    )
    run = RunInputs(data, eval_split, train_rows, validation_rows, test_rows, model, processor)
    if data_args.frame_cache:
        used = [[] if train_args.eval_only else train_rows, validation_rows, test_rows]
        try:
            run.frames, kept = open_frame_cache(processor, used, accelerator, data_args)
            _, run.validation_rows, run.test_rows = kept
            if not train_args.eval_only:  # rows of clips that cannot be decoded may have been skipped
                run.train_rows = kept[0]
                check_batches(run.train_rows, train_args)
        except SETUP_ERRORS:
            # The frame settings come from the model, so its from-scratch vocabulary is already written; a run refused
            # for a clip that cannot be decoded leaves no output, as one refused for a missing file does.
            if not earlier_vocabulary:
                vocabulary.unlink(missing_ok=True)
            raise
    return run


def train_and_evaluate(
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    accelerator: Accelerator,
    callbacks: Sequence[StepCallback] = (),
) -> None:
    """The run itself, once the arguments are parsed and the output folder exists.

    Args:
        model_args (`ModelArguments`): The model options.
        data_args (`DataArguments`): The data options.
        train_args (`TrainArguments`): The training options.
        accelerator (`Accelerator`): The run's.
        callbacks (`Sequence[StepCallback]`, *optional*): Go to the training loop (see `TrainingLoop`).

    Raises:
        SystemExit: the input is wrong (one line, before anything trains).
        NonFiniteError: the run diverged.
    """
    evaluating = train_args.do_eval or train_args.eval_only
    try:
        run = set_up_run(model_args, data_args, train_args, accelerator, evaluating)
    except SETUP_ERRORS as error:
        # Bad input (a path, a file that is not what its option says, an option out of range, a clip that cannot be
        # decoded): one line, no traceback. Errors once training runs keep their traceback.
        raise SystemExit(f"error: {error}") from None
    model, processor = run.model, run.processor
    if train_args.gradient_checkpointing:
        model.activation_checkpointing_enable()

    results = {
        "benchmark": data_args.benchmark,
        "dataset": data_label(data_args),
        "split": run.eval_split,
        "splits": announce_splits(run.data, run.eval_split, data_args, train_args),
    }
    if train_args.eval_only:
        results["selection"] = f"evaluation of {model_args.init or model_args.clip or 'a randomly initialised model'}"
    else:
        loop = prepare_training(
            model,
            processor,
            run.train_rows,
            run.validation_rows,
            accelerator,
            data_args,
            train_args,
            callbacks,
            run.frames,
        )
        results.update(loop.run())
    if evaluating:
        test = report_test_metrics(
            model, processor, run.test_rows, run.eval_split, accelerator, data_args, train_args, run.frames
        )
        results.update(test)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_outputs(model, processor, results, accelerator, model_args, data_args, train_args)
    accelerator.end_training()

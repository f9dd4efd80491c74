"""What a run leaves in its output folder (metrics.json, the model card and, after training, the model and processor)
and the upload of that folder to the Hub (`--push_to_hub`)."""

import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate import Accelerator

from .. import DRLProcessor
from .arguments import DataArguments, ModelArguments, TrainArguments
from .finite import NonFiniteError, describe_tensors, diverged, nonfinite_tensors
from .model_card import write_model_card

__all__ = ["push_folder", "save_outputs"]

# The run's messages go to one logger, whichever module of the run writes them.
logger = logging.getLogger("train")


def save_outputs(
    model: torch.nn.Module,
    processor: DRLProcessor,
    results: dict,
    accelerator: Accelerator,
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
) -> None:
    """Writes metrics.json and the model card, and after training the model and processor; pushes if asked.

    Args:
        model (`torch.nn.Module`): The trained (or evaluated) model.
        processor (`DRLProcessor`): Its processor.
        results (`dict`): What metrics.json records (`dataset`, `split`, `selection`, the metrics, ...); the run's
            arguments are added to it.
        accelerator (`Accelerator`): The run's (the model is unwrapped from it).
        model_args (`ModelArguments`): The model options, recorded and named on the card.
        data_args (`DataArguments`): The data options, recorded.
        train_args (`TrainArguments`): The training options: `output_dir`, `eval_only`, `push_to_hub`.

    Raises:
        NonFiniteError: the trained model holds a NaN or infinite weight; then nothing is written or pushed.
    """
    output_dir = Path(train_args.output_dir)
    if not train_args.eval_only:
        bad = nonfinite_tensors(accelerator.unwrap_model(model).state_dict())
        if bad:
            raise NonFiniteError(
                diverged(f"the trained weights hold NaN or infinite values ({describe_tensors(bad)})", train_args.lr)
            )
    results["arguments"] = {**asdict(model_args), **asdict(data_args), **asdict(train_args)}
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    if not train_args.eval_only:
        accelerator.unwrap_model(model).save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    write_model_card(
        output_dir,
        accelerator.unwrap_model(model).config,
        results.get("metrics"),
        results["dataset"],
        results["split"],
        results["selection"],
        processor.video_processor,
        repo_id=train_args.push_to_hub,
        base_model=model_args.clip if model_args.clip and not Path(model_args.clip).exists() else None,
    )
    logger.info("Saved %s to %s", "metrics and card" if train_args.eval_only else "model, processor, card", output_dir)
    if not train_args.eval_only and train_args.push_to_hub:
        push_folder(output_dir, train_args.push_to_hub)


def push_folder(folder: Path, repo_id: str) -> None:
    """Uploads the final folder (weights, config, code, processor, card, metrics) to a Hub model repo.

    Args:
        folder (`Path`): The run's output folder.
        repo_id (`str`): The Hub model repo, created if it is not there.

    Raises:
        SystemExit: the upload failed, or the weights are not finite (one line; the trained folder stays as it is).
    """
    # The upload and its checks are the ones of `hub_scripts/push_to_hub.py`, imported when a run pushes.
    from hub_scripts.push_to_hub import CheckpointFolderError, HubUploadError, upload_checkpoint

    # The card was just written for this repo id; `hub_scripts/push_to_hub.py` also checks and re-cards a folder.
    try:
        upload_checkpoint(folder, repo_id)
    except CheckpointFolderError as error:  # weights that are not finite: never uploaded
        raise SystemExit(f"error: {error}") from None
    except HubUploadError as error:
        raise SystemExit(
            f"error: {error}. The model is saved in {folder}; push it later with "
            f"`python hub_scripts/push_to_hub.py {folder} --repo_id {repo_id}`."
        ) from None
    logger.info("Pushed %s to https://huggingface.co/%s", folder, repo_id)

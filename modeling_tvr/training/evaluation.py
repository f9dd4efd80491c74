"""Retrieval evaluation of a run's model: every caption and every distinct video encoded once over all processes,
scored both ways (text-to-video, video-to-text), and the test metrics printed and drawn as a recall curve."""

from collections.abc import Sequence
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import DRLProcessor
from ..frame_cache import CachedFramesDataset, FrameCache, collate_frames
from .arguments import DataArguments, TrainArguments, data_label
from .cached_frames import model_inputs
from .metrics import dual_softmax, format_metrics_table, retrieval_metrics, retrieval_ranks
from .plots import save_recall_curve

__all__ = ["evaluate", "report_test_metrics"]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    processor: DRLProcessor,
    rows: Sequence[dict],
    accelerator: Accelerator,
    args: TrainArguments,
    num_workers: int,
    frames: FrameCache | None = None,
) -> dict:
    """Encodes each caption and each distinct video once, scores them in chunks, computes the metrics.

    Args:
        model (`torch.nn.Module`): The DRL model, as prepared by the accelerator or not.
        processor (`DRLProcessor`): Makes the model's inputs of captions and videos.
        rows (`Sequence[dict]`): The rows to score (`caption`, `video`, `start`, `end`); rows of one clip are one video.
        accelerator (`Accelerator`): Shares the encoding between the processes and gathers the features.
        args (`TrainArguments`): `eval_batch_size` (per process) and `dsl`.
        num_workers (`int`): DataLoader workers that decode videos.
        frames (`FrameCache`, *optional*):
            A filled frame cache to read the videos' uint8 frames from (normalised on the device) instead of decoding
            them.

    Returns:
        `dict`: `metrics` (and `metrics_dsl` with `args.dsl`), the `ranks` of each direction, `num_texts` and
        `num_videos`.
    """
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    videos, video_index, text_to_video = [], {}, []
    for row in rows:
        key = (row["video"], row["start"], row["end"])
        if key not in video_index:
            video_index[key] = len(videos)
            videos.append(row["video"] if row["start"] is None else key)
        text_to_video.append(video_index[key])
    captions = [row["caption"] for row in rows]

    def encode(items, collate, encoder):
        loader = DataLoader(items, batch_size=args.eval_batch_size, collate_fn=collate, num_workers=num_workers)
        features, masks = [], []
        for batch in tqdm(accelerator.prepare(loader), disable=not accelerator.is_main_process, leave=False):
            feats, mask = encoder(batch)
            features.append(accelerator.gather_for_metrics(feats))
            masks.append(accelerator.gather_for_metrics(mask))
        return torch.cat(features), torch.cat(masks)

    text, text_mask = encode(
        captions,
        lambda batch: processor(text=batch),
        lambda b: (
            unwrapped.get_text_features(b["input_ids"], b["attention_mask"]).text_embeds,
            b["attention_mask"],
        ),
    )
    if frames is not None:
        video_items, video_collate = CachedFramesDataset(frames, videos), collate_frames
    else:
        video_items, video_collate = videos, lambda batch: processor.video_processor(batch)

    def encode_videos(batch):
        inputs = model_inputs(batch, processor.video_processor)
        features = unwrapped.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"]).video_embeds
        return features, inputs["video_mask"]

    video, video_mask = encode(video_items, video_collate, encode_videos)
    similarity = unwrapped.similarity(text, text_mask, video, video_mask).float().cpu()
    results = {
        "metrics": retrieval_metrics(similarity, text_to_video),
        "ranks": retrieval_ranks(similarity, text_to_video),
    }
    if args.dsl:
        results["metrics_dsl"] = retrieval_metrics(dual_softmax(similarity), text_to_video)
    results.update({"num_texts": len(captions), "num_videos": len(videos)})
    return results


def report_test_metrics(
    model: torch.nn.Module,
    processor: DRLProcessor,
    rows: Sequence[dict],
    split: str,
    accelerator: Accelerator,
    data_args: DataArguments,
    train_args: TrainArguments,
    frames: FrameCache | None = None,
) -> dict:
    """Evaluates on `rows`, prints the metrics table and saves the recall curve (main process).

    Args:
        model (`torch.nn.Module`): The model to evaluate.
        processor (`DRLProcessor`): Its processor.
        rows (`Sequence[dict]`): The rows of the split the metrics are reported on.
        split (`str`): That split's name, for the table's title.
        accelerator (`Accelerator`): The run's.
        data_args (`DataArguments`): The data (its name in the title) and `num_workers`.
        train_args (`TrainArguments`): `output_dir` (the recall curve goes there), `eval_batch_size` and `dsl`.
        frames (`FrameCache`, *optional*): A filled frame cache to read the videos from.

    Returns:
        `dict`: the metrics.json entries (`evaluate`'s results less the ranks).
    """
    test = evaluate(model, processor, rows, accelerator, train_args, data_args.num_workers, frames)
    ranks = test.pop("ranks")
    if accelerator.is_main_process:
        output_dir = Path(train_args.output_dir)
        label = data_label(data_args)
        save_recall_curve(*ranks, output_dir / "recall_curve.png", title=f"{label} {split}")
        print(f"\n{label} {split}: {test['num_texts']} captions, {test['num_videos']} videos")
        print(format_metrics_table(test["metrics"]))
        if "metrics_dsl" in test:
            print("\nwith dual softmax (DSL):\n" + format_metrics_table(test["metrics_dsl"]))
    return test

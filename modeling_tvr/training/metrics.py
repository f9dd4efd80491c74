"""Text-video retrieval metrics: R@1/5/10, median and mean rank, both directions, several captions per video."""

from collections.abc import Sequence

import numpy as np
import torch

RECALL_AT = (1, 5, 10)


def _summary(ranks: torch.Tensor) -> dict[str, float]:
    ranks = ranks.double()
    summary = {f"R@{k}": float((ranks <= k).double().mean() * 100) for k in RECALL_AT}
    summary["MdR"] = float(np.median(ranks.numpy()))
    summary["MnR"] = float(ranks.mean())
    return summary


def retrieval_ranks(
    similarity: torch.Tensor, text_to_video: Sequence[int] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    1-based ranks of the correct item for every text query (t2v) and every video that has captions (v2t).

    A rank is 1 + the number of OTHER candidates scoring at least as high as the target, so ties never flatter
    the model. For v2t, a video scores each caption group (the captions of one video) by its best caption.
    """
    similarity = torch.as_tensor(similarity).double().cpu()
    targets = torch.as_tensor(text_to_video, dtype=torch.long).cpu()
    num_texts, num_videos = similarity.shape
    if targets.shape != (num_texts,):
        raise ValueError(f"text_to_video has {targets.numel()} entries for {num_texts} texts.")
    if num_texts and (targets.min() < 0 or targets.max() >= num_videos):
        raise ValueError(f"text_to_video indices must lie in [0, {num_videos}).")
    if torch.isnan(similarity).any():
        raise ValueError("The similarity matrix contains NaN.")
    target_scores = similarity[torch.arange(num_texts), targets]
    t2v_ranks = (similarity >= target_scores[:, None]).sum(dim=1)  # counts the target itself: rank 1 if alone on top

    # group_scores[v, g]: the best score of video v against the captions of video g.
    group_scores = torch.full((num_videos, num_videos), float("-inf"), dtype=similarity.dtype)
    group_scores.scatter_reduce_(1, targets.expand(num_videos, -1), similarity.T, reduce="amax")
    has_captions = torch.zeros(num_videos, dtype=torch.bool)
    has_captions[targets] = True
    queries = torch.arange(num_videos)[has_captions]
    own = group_scores[queries, queries]
    v2t_ranks = (group_scores[queries] >= own[:, None]).sum(dim=1)
    return t2v_ranks, v2t_ranks


def retrieval_metrics(
    similarity: torch.Tensor, text_to_video: Sequence[int] | torch.Tensor
) -> dict[str, dict[str, float]]:
    """
    Standard text-video retrieval metrics.

    Args:
        similarity: `[num_texts, num_videos]` scores (higher is better).
        text_to_video: for each text, the index of the video it describes.

    Returns:
        `{"t2v": {"R@1", "R@5", "R@10", "MdR", "MnR"}, "v2t": {...}}`, recalls in percent, ranks 1-based.
    """
    t2v_ranks, v2t_ranks = retrieval_ranks(similarity, text_to_video)
    return {"t2v": _summary(t2v_ranks), "v2t": _summary(v2t_ranks)}


def dual_softmax(similarity: torch.Tensor, temperature: float = 100.0) -> torch.Tensor:
    """
    Dual-softmax re-normalisation (DSL): each score weighted by the softmax over the texts for its video, which
    favours a video that one text prefers over all others. Applied at evaluation only, reported separately.
    """
    similarity = torch.as_tensor(similarity).float()
    return similarity * torch.softmax(similarity * temperature, dim=0)


def format_metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """A markdown table of `retrieval_metrics` output (one row per direction)."""
    columns = [f"R@{k}" for k in RECALL_AT] + ["MdR", "MnR"]
    lines = ["| direction | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for direction, values in metrics.items():
        lines.append(f"| {direction} | " + " | ".join(f"{values[c]:.1f}" for c in columns) + " |")
    return "\n".join(lines)

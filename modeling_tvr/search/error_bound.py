"""The quantile both measured bounds use (`sketch.py` for the sketch's error, `frame_lists.py` for the lists')."""

from statistics import NormalDist


def error_quantile(recall_target: float, num_videos: int) -> float:
    """`z` of the error bound: exceeded by any one of `num_videos` Gaussian errors with probability
    `1 - recall_target`."""
    if not 0.5 <= recall_target < 1:
        raise ValueError(f"recall_target must be in [0.5, 1), got {recall_target}; use candidates= for exhaustive.")
    return NormalDist().inv_cdf(1 - (1 - recall_target) / max(num_videos, 1))

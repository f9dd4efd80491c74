"""One video's outcome of encoding: its features with the fingerprint of the file they came from, or why it failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .features import PreparedSide
from .fingerprint import FileFingerprint


@dataclass(frozen=True)
class EncodedVideo:
    """A video's prepared features (`features.prepare_videos`) and the fingerprint of its file when it was read.

    Args:
        fingerprint (`FileFingerprint`): the file as it was when encoded.
        vectors (`torch.Tensor` of shape `(frames, width)`): normalised frame features, zero on padded frames.
        weights (`torch.Tensor` of shape `(frames,)`): frame weights, zero on padded frames.
        summary (`torch.Tensor` of shape `(width,)`): the video's summary vector.
    """

    fingerprint: FileFingerprint
    vectors: torch.Tensor
    weights: torch.Tensor
    summary: torch.Tensor

    @property
    def path(self) -> str:
        return self.fingerprint.path


@dataclass(frozen=True)
class FailedVideo:
    """A video that could not be decoded.

    Args:
        path (`str`): the file's absolute path.
        reason (`str`): the error, as reported to the user.
    """

    path: str
    reason: str


def stack_features(videos: Sequence[EncodedVideo], storage_dtype: torch.dtype | None = None) -> PreparedSide:
    """The features of `videos` as one `PreparedSide`, row `i` for `videos[i]`; frame vectors in `storage_dtype`.

    Args:
        videos (`Sequence[EncodedVideo]`): at least one video.
        storage_dtype (`torch.dtype`, *optional*): dtype of the stacked frame vectors (default: theirs).
    """
    vectors = torch.stack([video.vectors for video in videos])
    return PreparedSide(
        vectors if storage_dtype is None else vectors.to(storage_dtype),
        torch.stack([video.weights for video in videos]),
        torch.stack([video.summary for video in videos]),
    )

"""What `FrameCache.fill` did."""

from __future__ import annotations

from dataclasses import dataclass, field

from .clips import Clip


@dataclass
class FillReport:
    """What one `FrameCache.fill` call did.

    The caller decides what a failure means (error or skip, as `--missing-videos`).

    Args:
        filled (`int`, *optional*, defaults to `0`):
            Clips decoded and stored by this call.
        reused (`int`, *optional*, defaults to `0`):
            Clips already stored from their file as it is now.
        failed (`dict[Clip, str]`, *optional*, defaults to `{}`):
            `{clip: reason}` of every clip asked for that cannot be decoded, whether it failed in this call or in an
            earlier one on the file as it is now (then it was not tried again).
    """

    filled: int = 0
    reused: int = 0
    failed: dict[Clip, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.filled} clip(s) decoded and stored, {self.reused} already stored, {len(self.failed)} failed"

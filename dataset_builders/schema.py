"""The row schema shared by every text-video retrieval benchmark in this package.

Each benchmark builder yields one row per caption, so a video with several captions appears in several rows that
share `video_id` and `video`. Keeping the schema identical across benchmarks lets the training and evaluation code
treat them all the same way.
"""

from __future__ import annotations

import datasets

__all__ = ["BENCHMARK_FEATURES", "benchmark_features"]


def benchmark_features() -> datasets.Features:
    """Return a fresh copy of the shared benchmark schema.

    Columns:

    - `video_id` (string): the benchmark's identifier of the video (shared by all captions of that video).
    - `video` (string): absolute path of the video file on disk.
    - `caption` (string): one caption; a video with several captions has several rows.
    - `start` (float32, nullable): start of the captioned moment in seconds, or None for the whole video.
    - `end` (float32, nullable): end of the captioned moment in seconds, or None for the whole video.

    Returns:
        `datasets.Features`: The schema.
    """
    return datasets.Features(
        {
            "video_id": datasets.Value("string"),
            "video": datasets.Value("string"),
            "caption": datasets.Value("string"),
            # Arrow columns are nullable, so None means "the whole video" (e.g. MSR-VTT) while
            # moment-level benchmarks (ActivityNet, DiDeMo) fill in seconds.
            "start": datasets.Value("float32"),
            "end": datasets.Value("float32"),
        }
    )


# The shared schema (see `benchmark_features`); builders should use a copy rather than mutate it.
BENCHMARK_FEATURES: datasets.Features = benchmark_features()

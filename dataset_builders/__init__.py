"""`datasets` builders for text-video retrieval benchmarks, all sharing one schema.

Use `load_benchmark`:

```python
from dataset_builders import load_benchmark

test = load_benchmark("toy", split="test")  # synthetic benchmark, generated on first use
mine = load_benchmark("videofolder", "my_videos")  # your own videos, beside a metadata.csv
```

or `load_video_dataset` for any video/caption dataset that `datasets` loads (a Hub id, parquet, csv, json),

or the command line, which prints the split sizes and can publish the rows on the Hub
(`python -m dataset_builders --help`).
"""

from .load import BENCHMARKS, available_benchmarks, load_benchmark
from .schema import BENCHMARK_FEATURES, benchmark_features
from .splits import split_sources
from .toy import ToyBenchmark, ToyBenchmarkConfig
from .video_datasets import load_video_dataset
from .videofolder import VideoFolderBenchmark, VideoFolderConfig

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_FEATURES",
    "ToyBenchmark",
    "ToyBenchmarkConfig",
    "VideoFolderBenchmark",
    "VideoFolderConfig",
    "available_benchmarks",
    "benchmark_features",
    "load_benchmark",
    "load_video_dataset",
    "split_sources",
]

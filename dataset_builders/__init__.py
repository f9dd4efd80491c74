"""``datasets`` builders for text-video retrieval benchmarks, all sharing one schema.

Use :func:`load_benchmark`::

    from dataset_builders import load_benchmark

    test = load_benchmark("toy", split="test")  # synthetic benchmark, generated on first use

or the command line, which prints the split sizes and can publish the rows on the Hub
(``python -m dataset_builders --help``).
"""

from .load import BENCHMARKS, available_benchmarks, load_benchmark
from .schema import BENCHMARK_FEATURES, benchmark_features
from .toy import ToyBenchmark, ToyBenchmarkConfig

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_FEATURES",
    "ToyBenchmark",
    "ToyBenchmarkConfig",
    "available_benchmarks",
    "benchmark_features",
    "load_benchmark",
]

"""Timing and memory helpers shared by the benchmarks in bench/: every clock and memory reading goes through here."""

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)
Result = TypeVar("Result")


def timed(function: Callable[[], Result]) -> tuple[float, Result]:
    """Seconds one call of `function` took, and what it returned."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def repeat_times(function: Callable[[], Result], repeat: int) -> tuple[list[float], Result | None]:
    """Seconds of each of `repeat` back-to-back calls of `function`, and what the last call returned."""
    times, result = [], None
    for _ in range(repeat):
        seconds, result = timed(function)
        times.append(seconds)
    return times, result


def best_time(function: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` timed calls of `function` in seconds, after one untimed warm-up call."""
    function()
    return min(repeat_times(function, repeat)[0])


def best_of(function: Callable[[], Result], repeat: int) -> tuple[float, Result | None]:
    """The fastest of `repeat` timed calls (no warm-up), and what the last call returned."""
    times, result = repeat_times(function, repeat)
    return min(times), result


def median_time(function: Callable[[], Result], repeat: int) -> tuple[float, Result | None]:
    """The median of `repeat` timed calls (no warm-up), and what the last call returned."""
    times, result = repeat_times(function, repeat)
    return statistics.median(times), result


def mean_time(function: Callable[[], object], calls: int, synchronize: Callable[[], None] | None = None) -> float:
    """Seconds per call of `calls` consecutive calls under one clock. `synchronize` (such as
    `torch.cuda.synchronize`) runs before the clock starts and before it stops, so that work queued on a device is
    counted in full."""
    if synchronize is not None:
        synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        function()
    if synchronize is not None:
        synchronize()
    return (time.perf_counter() - start) / calls


def alternating_best(functions: Mapping[Key, Callable[[], object]], rounds: int) -> dict[Key, float]:
    """The fastest time of each function over `rounds` rounds, each round calling every function once in order,
    so that all of them see the same machine load (no warm-up: run one first if needed)."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for key, function in functions.items():
            best[key] = min(best[key], timed(function)[0])
    return best


def p95(values: list[float]) -> float:
    """The 95th percentile as the benchmarks report it: the sorted value at index int(0.95 * (n - 1)), a value
    actually measured (never interpolated)."""
    return sorted(values)[int(0.95 * (len(values) - 1))]


def status_kib(field: str) -> float:
    """A memory figure of this process from /proc/self/status in KiB (`RssAnon`: anonymous memory it holds, which
    leaves out file pages mapped and read, page cache the kernel may drop; `VmHWM`: peak resident memory); NaN
    where the file or field is missing (not Linux)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return float(line.split()[1])
    return float("nan")


def peak_rss_kib() -> float:
    """Peak resident memory of this process so far, in KiB (Linux's `ru_maxrss` unit). Under Linux a child
    inherits its parent's figure through fork and exec: for a fresh process use `child_peak_rss_mib`."""
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child_peak_rss_mib(code: str, path: list[str | Path]) -> float:
    """Peak resident memory (MiB) of a fresh Python process running `code` with `path` first on `sys.path`.

    Read from the child's own `VmHWM`, not from `getrusage`: Linux carries `ru_maxrss` over from the parent through
    fork and exec, so a child of a large process would report the parent's peak."""
    script = f"import sys\nsys.path[:0] = {[str(p) for p in path]!r}\n" + code + "\n"
    script += "print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')).split()[1])"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1]) / 1024

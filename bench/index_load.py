"""Benchmark: what verifying an index costs when it is loaded (the search command loads it on every run).

A synthetic committed index (fp16 frame features, 12 frames x 512, as `VideoIndex(storage_dtype=torch.float16)`
stores them) is read with `modeling_tvr.search.storage.read_index` against safetensors' `load_file` of the same
tensor file alone (which maps the file), page cache warm, best of `--repeat`: once with the full checks (format, row
counts, checksum of the tensor file, finite values), as the first load of a new or changed index runs them, and once
trusting the record those checks left (`verified.json`), as every later load does.

    python -m bench.index_load --write
"""

import argparse
import platform
import tempfile
from datetime import date
from pathlib import Path

import torch
from safetensors.torch import load_file

from bench.report import write_section
from bench.timing import best_time
from modeling_tvr.search.storage import (
    INDEX_FILE,
    VERIFIED_FILE,
    commit_index,
    committed_version,
    read_index,
)


def synthetic_index(path: Path, videos: int, frames: int = 12, dim: int = 512) -> Path:
    generator = torch.Generator().manual_seed(0)
    tensors = {
        "vectors": torch.randn(videos, frames, dim, generator=generator).to(torch.float16),
        "weights": torch.full((videos, frames), 1 / frames),
        "summary": torch.randn(videos, dim, generator=generator),
    }
    entries = [{"path": f"/videos/{i:07d}.mp4", "size": 1, "mtime_ns": 1, "blake2b": "0" * 32} for i in range(videos)]
    commit_index(path, tensors, {"model": {}, "videos": entries, "failed": {}, "failed_stats": {}})
    return path / committed_version(path) / INDEX_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [
        "| videos | tensor file (MB) | load_file alone (s) | read_index: full checks (s) | later loads (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for videos in args.sizes:
        with tempfile.TemporaryDirectory() as work:
            tensor_file = synthetic_index(Path(work), videos)
            record = tensor_file.parent / VERIFIED_FILE
            plain = best_time(lambda f=tensor_file: load_file(str(f)), args.repeat)
            full = best_time(lambda w=work, r=record: (r.unlink(missing_ok=True), read_index(w)), args.repeat)
            later = best_time(lambda w=work: read_index(w), args.repeat)
            size = tensor_file.stat().st_size / 1e6
        rows.append(f"| {videos:,} | {size:.0f} | {plain:.2f} | {full:.2f} | {later:.2f} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"Synthetic indexes (fp16 features, 12 frames x 512), page cache warm, best of {args.repeat}; "
            f"{platform.machine()}, torch {torch.__version__}, {date.today().isoformat()}. Command: "
            "`python -m bench.index_load --write`.",
            "",
            *rows,
            "",
            "The full checks read the tensor file for its BLAKE2b checksum and check that every value is finite: the "
            "cost of refusing a damaged index instead of searching it, paid once per state of the files. Later loads "
            "parse the manifest (one entry per video) and compare the files' size, times and inode with the record.",
        ]
    )
    print(text)
    if args.write:
        write_section("index_load", "Loading a verified index", text)


if __name__ == "__main__":
    main()

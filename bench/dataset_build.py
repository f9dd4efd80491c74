"""Benchmark: building MSR-VTT at full size with `load_benchmark`, against reading its files alone in the same run.

Writes annotation files of MSR-VTT's real shape and size into a temporary folder (a 9,000-row train csv, the
1,000-row JSFusion test csv, a json with 20 captions per video: 180,000 train rows) and 10,000 empty video files in
nested folders (the builders look videos up, they do not decode them). Then times, best of 3:

- the lower bound: parsing the annotations and looking every video up (`read_annotations` + `VideoFileLookup` +
  `attach_videos`), which any loader has to do;
- `load_benchmark("msrvtt", ...)`: the same plus writing the Arrow splits through `datasets`.

    python -m bench.dataset_build --write
"""

import argparse
import csv
import json
import os
import platform
import tempfile
from datetime import date
from pathlib import Path

from bench.report import write_section
from bench.timing import best_of

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def write_msrvtt(data_dir: Path, video_dir: Path, captions_per_video: int) -> None:
    """MSR-VTT's three annotation files and 10,000 empty videos (every 100 in their own folder)."""
    train_ids = [f"video{i}" for i in range(9000)]
    test_ids = [f"video{i}" for i in range(9000, 10000)]
    with open(data_dir / "MSRVTT_train.9k.csv", "w", newline="") as file:
        csv.writer(file).writerows([["video_id"], *[[video_id] for video_id in train_ids]])
    with open(data_dir / "MSRVTT_JSFUSION_test.csv", "w", newline="") as file:
        rows = [
            [f"ret{i}", f"msr{i}", video_id, f'a person, "quoted", does thing {i}']
            for i, video_id in enumerate(test_ids)
        ]
        csv.writer(file).writerows([["key", "vid_key", "video_id", "sentence"], *rows])
    sentences = [
        {"video_id": video_id, "caption": f"caption {k} of {video_id}", "sen_id": i * captions_per_video + k}
        for i, video_id in enumerate(train_ids + test_ids)
        for k in range(captions_per_video)
    ]
    videos = [{"video_id": video_id} for video_id in train_ids + test_ids]
    (data_dir / "MSRVTT_data.json").write_text(json.dumps({"videos": videos, "sentences": sentences}))
    for i, video_id in enumerate(train_ids + test_ids):
        folder = video_dir / f"part{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{video_id}.mp4").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions-per-video", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args()

    from dataset_builders import load_benchmark
    from dataset_builders.annotated import VideoFileLookup, attach_videos
    from dataset_builders.msrvtt import MSRVTTBenchmark

    with tempfile.TemporaryDirectory() as tmp:
        data_dir, video_dir, cache = Path(tmp) / "data", Path(tmp) / "videos", Path(tmp) / "cache"
        data_dir.mkdir()
        write_msrvtt(data_dir, video_dir, args.captions_per_video)
        builder = MSRVTTBenchmark(data_dir=str(data_dir), video_dir=str(video_dir), cache_dir=str(cache / "bound"))

        def read_only():
            rows = builder.read_annotations(data_dir)
            return attach_videos(rows, VideoFileLookup(video_dir), "error", "msrvtt")

        read_only()  # warm the file cache for both timings
        bound_s, rows = best_of(read_only, args.repeat)
        import datasets

        datasets.config.HF_DATASETS_CACHE = str(cache)  # keep the Arrow files in the temporary folder
        build_s, data = best_of(lambda: load_benchmark("msrvtt", data_dir, video_dir=video_dir), args.repeat)
    sizes = {split: data[split].num_rows for split in data}
    assert sizes == {split: len(split_rows) for split, split_rows in rows.items()}
    text = "\n".join(
        [
            f"MSR-VTT shaped files: {sizes['train']:,} train rows ({args.captions_per_video} captions x 9,000 videos), "
            f"{sizes['test']:,} test rows, 10,000 video files in 100 folders; best of {args.repeat}; "
            f"{platform.processor() or platform.machine()}, {date.today().isoformat()}. "
            "Command: `python -m bench.dataset_build --write`.",
            "",
            "| step | seconds |",
            "| --- | --- |",
            f"| parse annotations + look every video up (lower bound) | {bound_s:.2f} |",
            f'| `load_benchmark("msrvtt", ...)`: the same + Arrow splits | {build_s:.2f} |',
            "",
            f"The whole build takes {build_s / bound_s:.2f}x the unavoidable part (the splits are written as Arrow "
            "tables of 10,000 rows, not row by row).",
        ]
    )
    print(text)
    if args.write:
        write_section("dataset_build", "Benchmark builders: MSR-VTT at full size", text)


if __name__ == "__main__":
    main()

"""A user's folder of their own videos as the README describes it: tiny real videos beside a metadata.csv (or
metadata.jsonl files), written by the tests of the `videofolder` benchmark, of `load_video_dataset` and of train.py."""

import json
from pathlib import Path

from .videos import write_video

METADATA_CSV = """file_name,caption
cat.mp4,a cat jumps on a table
clips/dog.mp4,a dog runs on the beach
clips/dog.mp4,"a brown dog plays in the waves, barking"
bird.mp4,a bird sings on a branch
fish.mp4,a fish swims in a bowl
"""

OWN_VIDEOS = ("cat.mp4", "clips/dog.mp4", "bird.mp4", "fish.mp4")


def write_videos(folder: Path, *names: str) -> None:
    """Tiny real H.264 files (PyAV), at `folder / name`."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(folder / name, seconds=0.25, fps=8, width=16, height=16)


def write_own_videos_folder(data_dir: Path) -> Path:
    """A user's folder: four videos (one in a subfolder, with two captions) and a five-row metadata.csv."""
    write_videos(data_dir, *OWN_VIDEOS)
    (data_dir / "metadata.csv").write_text(METADATA_CSV)
    return data_dir


def write_jsonl(path: Path, records: list[dict]) -> None:
    """`records` as JSON lines at `path` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))

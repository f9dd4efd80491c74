"""Which files under a folder are videos: one extension list and one walk, shared by the search command and the
benchmark builders (`dataset_builders`), so that both see the same files.

The rule: every file whose extension (any case) is in `VIDEO_EXTENSIONS`, at any depth, except hidden entries, files
and folders whose name starts with "." below the root (the root itself may be hidden). Hidden entries are what file
browsers and `ls` leave out: version-control and cache folders (the search index keeps its own `.drl-index` inside the
video folder) and macOS's `._name.mp4` resource forks, which carry a video's extension but are not videos. Symbolic
links to files are followed, links to folders are not (`os.walk`'s default), so a link cannot make the walk loop.
"""

import os
from collections.abc import Iterator
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp", ".ogv", ".wmv")


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def iter_video_files(root: str | os.PathLike, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> Iterator[Path]:
    """
    The video files under `root` (see the module docstring for the rule), top-down in a fixed order: a folder's own
    files by name, then its sub-folders by name. Yields nothing when `root` is not a folder; callers say so.
    """
    extensions = tuple(extension.lower() for extension in extensions)
    for folder, subfolders, files in os.walk(Path(root).expanduser()):
        subfolders[:] = sorted(name for name in subfolders if not _is_hidden(name))
        for name in sorted(files):
            if not _is_hidden(name) and os.path.splitext(name)[1].lower() in extensions:
                yield Path(folder) / name


def find_videos(folder: str | os.PathLike, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[str]:
    """Every video file under `folder` (see the module docstring for the rule), as absolute paths, sorted."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"Video folder {folder} does not exist.")
    return sorted(os.path.abspath(path) for path in iter_video_files(folder, extensions))


__all__ = ["VIDEO_EXTENSIONS", "find_videos", "iter_video_files"]

"""VATEX (Wang et al., ICCV 2019), English captions, as used for text-video retrieval.

Files (as the field distributes them), in one of two layouts:

- prepared: `ref_captions.json` (video id -> its English captions) with `train_list.txt` and `test_list.txt`, the
  caption/split files used by the CLIP4Clip-derived retrieval code (e.g. CLIP2Video, DRL, X-Pool).
- official: `vatex_training_v1.0.json` and `vatex_validation_v1.0.json` from the VATEX download page on vatex.org
  (lists of `{"videoID", "enCap", "chCap"}`; only the 10 English `enCap` captions are used) with the same
  `train_list.txt` / `test_list.txt`.

The usual retrieval split has 25,991 train videos and 1,500 test videos drawn from the official validation set. An
optional `val_list.txt` adds a `validation` split in either layout. The videos are the YouTube clips named by their
VATEX id (`Ptf_2VRj-V0_000122_000132`: YouTube id, start and end second), which VATEX does not redistribute;
they are fetched from YouTube with the ids of the official json files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .annotated import AnnotatedBenchmark, AnnotatedBenchmarkConfig
from .annotation_files import MalformedAnnotationError, caption_rows_for_lists, load_json, require_file

__all__ = ["VATEXBenchmark", "VATEXBenchmarkConfig"]

PREPARED_FILE = "ref_captions.json"
OFFICIAL_FILES = ("vatex_training_v1.0.json", "vatex_validation_v1.0.json")
SPLIT_FILES = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}
OPTIONAL_SPLITS = {"validation"}
LAYOUTS = ("auto", "prepared", "official")


def _clean(caption: str) -> str:
    # VATEX captions carry stray spaces and trailing blanks; the reference loaders collapse whitespace likewise.
    return " ".join(caption.split())


def _prepared_captions(path: Path) -> dict[str, list[str]]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise MalformedAnnotationError(path, "top level", "an object of video id -> list of captions")
    for video_id, captions in data.items():
        if not (isinstance(captions, list) and all(isinstance(caption, str) for caption in captions)):
            raise MalformedAnnotationError(path, f"key {video_id!r}", "a list of caption strings")
    return {video_id: [_clean(caption) for caption in captions] for video_id, captions in data.items()}


def _official_captions(paths: list[Path]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for path in paths:
        data = load_json(path)
        if not isinstance(data, list):
            raise MalformedAnnotationError(path, "top level", "a list of {'videoID', 'enCap', ...} objects")
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("videoID"), str):
                raise MalformedAnnotationError(path, f"item {i}, key 'videoID'", "a string")
            captions = item.get("enCap")
            if not (isinstance(captions, list) and all(isinstance(caption, str) for caption in captions)):
                raise MalformedAnnotationError(
                    path, f"item {i} ({item['videoID']!r}), key 'enCap'", "a list of strings"
                )
            result.setdefault(item["videoID"], []).extend(_clean(caption) for caption in captions)
    return result


@dataclass
class VATEXBenchmarkConfig(AnnotatedBenchmarkConfig):
    """Options of VATEX.

    Args:
        layout (`str`, *optional*, defaults to `"auto"`):
            Which caption files to read. `"auto"` reads `ref_captions.json` when present (it is what the reference
            retrieval loaders read, so results compare directly), else the two official json files; `"prepared"` or
            `"official"` force one layout.
    """

    layout: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")


class VATEXBenchmark(AnnotatedBenchmark):
    """VATEX retrieval benchmark (English captions): train, optional validation and test splits, every caption a row.

    `data_dir` holds `train_list.txt` and `test_list.txt` (one video id per line; optional `val_list.txt`) and the
    captions: `ref_captions.json` (prepared layout) or `vatex_training_v1.0.json` and `vatex_validation_v1.0.json`
    (official layout); see `VATEXBenchmarkConfig.layout`. `video_dir` (default `data_dir`) holds the videos,
    `<videoID>.<any video extension>`, in any nested folders.
    """

    BUILDER_CONFIG_CLASS = VATEXBenchmarkConfig
    config: VATEXBenchmarkConfig
    DESCRIPTION = "VATEX text-video retrieval (English captions): 25,991 train and 1,500 test videos, 10 captions each."

    def _caption_files(self, data_dir: Path) -> list[Path]:
        layout = self.config.layout
        if layout == "auto":
            if (data_dir / PREPARED_FILE).is_file():
                layout = "prepared"
            elif any((data_dir / name).is_file() for name in OFFICIAL_FILES):
                layout = "official"
            else:
                raise FileNotFoundError(
                    f"{self.name}: no caption file in {data_dir}; expected {PREPARED_FILE} (prepared layout) or "
                    f"{' and '.join(OFFICIAL_FILES)} (official layout), next to train_list.txt and test_list.txt."
                )
        names = [PREPARED_FILE] if layout == "prepared" else list(OFFICIAL_FILES)
        return [require_file(data_dir, name, self.name) for name in names]

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        caption_paths = self._caption_files(data_dir)
        list_paths = {
            split: require_file(data_dir, name, self.name)
            for split, name in SPLIT_FILES.items()
            if split not in OPTIONAL_SPLITS or (data_dir / name).is_file()
        }
        if caption_paths[0].name == PREPARED_FILE:
            captions = _prepared_captions(caption_paths[0])
        else:
            captions = _official_captions(caption_paths)
        caption_files = " / ".join(path.name for path in caption_paths)

        return caption_rows_for_lists(list_paths, captions, caption_files)

"""MSVD (Microsoft Research Video Description Corpus, Chen & Dolan, ACL 2011) as used for text-video retrieval.

Files (as the field distributes them):

- `raw-captions.pkl`, `train_list.txt`, `val_list.txt` and `test_list.txt` come from the `msvd_data` archive linked
  in the CLIP4Clip README (the split is the standard one of Venugopalan et al. 2015: 1,200 train, 100 validation and
  670 test videos).
- The videos (`YouTubeClips.tar`, files such as `-4wsuPCjDBc_5_15.avi`) come from the original MSVD release by
  Microsoft Research, also linked from the CLIP4Clip README.

Splits `train`, `validation` and `test` each hold every caption of their videos (about 40 per video), one row
per caption, as CLIP4Clip's loader unfolds them for testing as well.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from .annotated import AnnotatedBenchmark
from .annotation_files import MalformedAnnotationError, caption_rows_for_lists, require_file

__all__ = ["MSVDBenchmark", "safe_load_pickle"]

SPLIT_FILES = {"train": "train_list.txt", "validation": "val_list.txt", "test": "test_list.txt"}


class _BuiltinsOnlyUnpickler(pickle.Unpickler):
    # A pickle may name any importable callable (os.system, ...) and the default Unpickler calls it, so a crafted
    # raw-captions.pkl could run code. Dicts, lists and strings need no lookup at all (they are pickle opcodes); the
    # few builtins allowed here cover older protocols, and every other global is refused.
    SAFE_BUILTINS = frozenset({"dict", "list", "str"})

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in self.SAFE_BUILTINS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed (only plain dicts, lists and strings)")


def safe_load_pickle(path: Path) -> Any:
    """Unpickle `path` allowing only builtin containers and strings, so that no code can run.

    Args:
        path (`Path`):
            The pickle file.

    Returns:
        `Any`: The unpickled value.

    Raises:
        MalformedAnnotationError: If the file is not such a pickle, naming the file.
    """
    try:
        return _BuiltinsOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
    except Exception as error:  # a damaged pickle can fail in many ways (EOFError, KeyError, ...): report them alike
        raise MalformedAnnotationError(path, "whole file", f"a pickle of plain dicts/lists/strings ({error})") from None


def _is_token_lists(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(tokens, list) and all(isinstance(token, str) for token in tokens) for tokens in value
    )


def _captions_by_video(path: Path) -> dict[str, list[str]]:
    data = safe_load_pickle(path)
    if not isinstance(data, dict):
        raise MalformedAnnotationError(path, "top level", f"a dict of video id -> captions, got {type(data).__name__}")
    captions = {}
    for video_id, token_lists in data.items():
        if not (isinstance(video_id, str) and _is_token_lists(token_lists)):
            raise MalformedAnnotationError(path, f"key {video_id!r}", "a list of captions, each a list of str tokens")
        captions[video_id] = [" ".join(tokens) for tokens in token_lists]
    return captions


class MSVDBenchmark(AnnotatedBenchmark):
    """MSVD retrieval benchmark: 1,200 train, 100 validation and 670 test videos, every caption a row.

    `data_dir` holds `raw-captions.pkl` (video id -> list of tokenised captions), `train_list.txt`, `val_list.txt` and
    `test_list.txt` (one video id per line). `video_dir` (default `data_dir`) holds the videos, `<video_id>.avi` (any
    video extension), in any nested folders.
    """

    DESCRIPTION = "MSVD text-video retrieval: 1,200/100/670 videos with about 40 captions each."

    def read_annotations(self, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
        captions_path = require_file(data_dir, "raw-captions.pkl", self.name)
        list_paths = {split: require_file(data_dir, name, self.name) for split, name in SPLIT_FILES.items()}
        captions = _captions_by_video(captions_path)
        return caption_rows_for_lists(list_paths, captions, captions_path.name)

"""VideoIndex: a user's video collection encoded once, saved, kept in sync with the files, searched in milliseconds.

    index = VideoIndex.build(model, processor, ["a.mp4", "b.mkv", ...], path="my_index")
    hits = index.search(["a dog catches a frisbee"], top_k=10)[0]   # [SearchHit(index, video, score), ...]
    index = VideoIndex.load("my_index", model, processor)           # later, in another process
    index.refresh(current_files)                                    # encode new / changed files, drop deleted ones

Building is resumable and distributed (`encoding.py`): encoded videos are flushed to `path/chunks/` every
`save_every` batches, a restarted build skips what its chunks already hold, and under `accelerate launch` each process
encodes its own shard. A video that fails to decode is reported (logged, kept in `index.failed` and the manifest),
never silently dropped; `on_error="raise"` stops at the first one instead.

The index keeps the file side (fingerprints, failures, model signature, its folder); its features live in a
`VideoStore` (`store.py`): `MemoryStore` by default, `QdrantStore` through `QdrantVideoIndex` (`qdrant.py`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers.utils import logging

from ..caption_checks import check_captions
from .chunks import CHUNK_DIR
from .encoded_video import EncodedVideo, FailedVideo, stack_features
from .encoding import EncodeOptions, empty_features, encode_videos, process_state
from .features import PreparedSide, prepare_queries
from .fingerprint import FileFingerprint
from .memory_store import MemoryStore
from .saved_index import SavedIndex, commit_saved_index, read_saved_index
from .signature import IndexMismatchError, check_signature, index_signature
from .sketch import DEFAULT_RECALL_TARGET
from .storage import finite_rows, has_index, index_lock
from .store import VideoStore

logger = logging.get_logger(__name__)

# The `build` options that `refresh` (hence `sync` of an existing index) takes too.
REFRESH_OPTIONS = ("batch_size", "num_workers", "on_error")
NON_FINITE_REASON = "the model gave non-finite (NaN or infinite) features for this video"

__all__ = ["SearchHit", "VideoIndex"]


@dataclass(frozen=True)
class SearchHit:
    """One ranked video: its position in the index, its path, and its exact DRL similarity to the query."""

    index: int
    video: str
    score: float


class VideoIndex:
    """
    Encoded videos with their file fingerprints; see the module docstring for the workflow.

    Args:
        entries (`list[FileFingerprint]`): one fingerprint per indexed video, in index order.
        store (`VideoStore`): their features, row `i` for `entries[i]` (`MemoryStore`, `QdrantStore`).
        signature (`dict`): `index_signature` of the model and processor that encoded them.
        model (`DRLModel`, *optional*): what `search` / `add` / `refresh` encode with (a loaded index that is only
            searched with precomputed query features needs none).
        processor (`DRLProcessor`, *optional*): its processor.
        failed (`dict[str, str]`, *optional*): `{path: reason}` of videos that could not be decoded.
        path (`str` or `os.PathLike`, *optional*): the folder the index is saved in, if any.
        failed_stats (`dict[str, list[int]]`, *optional*): `{path: [size, mtime_ns]}` of the failed files when they
            failed: `add` / `refresh` do not try an unchanged failed file again (decoding it would fail again, on
            every run), only a changed one.
    """

    def __init__(
        self,
        entries: list[FileFingerprint],
        store: VideoStore,
        signature: dict,
        model=None,
        processor=None,
        failed: dict[str, str] | None = None,
        path: str | os.PathLike | None = None,
        failed_stats: dict[str, list[int]] | None = None,
    ):
        self.entries, self.store, self.signature = list(entries), store, signature
        self.model, self.processor = model, processor
        self.failed = dict(failed or {})
        self.failed_stats = {path: list(stat) for path, stat in (failed_stats or {}).items() if path in self.failed}
        self.path = Path(path) if path is not None else None
        self._version: str | None = None  # the committed version at `path` this copy was read from or saved as
        if model is not None:
            check_signature(signature, model, processor)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def paths(self) -> list[str]:
        """Absolute paths of the indexed videos, in index order."""
        return [entry.path for entry in self.entries]

    @property
    def videos(self) -> PreparedSide:
        """Every video's features, in index order (read back whole from a store outside this process)."""
        return self.store.features()

    @property
    def storage_dtype(self) -> torch.dtype:
        """The dtype frame vectors are stored in."""
        return self.store.storage_dtype

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        model,
        processor,
        videos: Iterable[str | os.PathLike],
        batch_size: int = 16,
        path: str | os.PathLike | None = None,
        num_workers: int = 0,
        save_every: int = 64,
        on_error: str = "skip",
        storage_dtype: torch.dtype = torch.float32,
        show_progress: bool = True,
        store: VideoStore | None = None,
    ) -> VideoIndex:
        """
        Encodes `videos` (file paths) with `model` and `processor` into a new index.

        Args:
            model (`DRLModel`): the model that encodes (and later searches).
            processor (`DRLProcessor`): its processor.
            videos (`Iterable[str | os.PathLike]`): the video files.
            batch_size (`int`, *optional*, defaults to 16): videos per forward pass.
            path (`str` or `os.PathLike`, *optional*): folder to save the index in; needed for resuming and for
                several processes (which must share it). An interrupted build called again with the same `path`
                skips the videos its chunks already hold.
            num_workers (`int`, *optional*, defaults to 0): DataLoader workers decoding videos in parallel.
            save_every (`int`, *optional*, defaults to 64): flush encoded videos to `path/chunks/` every this many
                batches.
            on_error (`str`, *optional*, defaults to `"skip"`): `"skip"` (report undecodable videos in
                `index.failed`, the log and the manifest) or `"raise"`.
            storage_dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): dtype of the stored frame
                features of the default in-memory store; `torch.float16` halves memory (scores are computed in
                float32 either way).
            show_progress (`bool`, *optional*, defaults to `True`): a tqdm bar on the main process.
            store (`VideoStore`, *optional*): an empty store to keep the features in (`QdrantVideoIndex.build` passes
                a `QdrantStore`); default: a `MemoryStore` in `storage_dtype`.
        """
        dtype = storage_dtype if store is None else store.storage_dtype
        options = EncodeOptions(batch_size, num_workers, save_every, on_error, dtype, show_progress)
        signature = index_signature(model, processor)
        if store is None:
            store = MemoryStore(empty_features(model, processor, storage_dtype), signature["interaction"])
        index = cls([], store, signature, model, processor, path=path)
        # The main process holds the folder's lock for the whole build: another build or sync of `path` waits.
        owns_lock = index.path is not None and process_state().is_main_process
        with index_lock(index.path) if owns_lock else contextlib.nullcontext():
            index._encode_and_append(_unique_paths(videos), options)
            if owns_lock:
                index.save(index.path)
        return index

    def _encode_and_append(self, paths: list[str], options: EncodeOptions) -> None:
        """Encodes `paths` (sharded across processes, resuming from chunks) and appends them in the given order."""
        chunk_dir = self.path / CHUNK_DIR if self.path is not None else None
        encoded = encode_videos(self.model, self.processor, paths, self.signature, options, chunk_dir)
        self._append([encoded[path] for path in paths if path in encoded])

    def _append(self, outcomes: list[EncodedVideo | FailedVideo]) -> None:
        """Appends the encoded videos, in order; records the ones that failed or whose features are not finite."""
        encoded = [video for video in outcomes if isinstance(video, EncodedVideo)]
        features = stack_features(encoded, self.store.storage_dtype) if encoded else None
        # A NaN or infinite feature would score as the best (or no) match for every query.
        finite = (
            (finite_rows(features.vectors) & finite_rows(features.weights) & finite_rows(features.summary)).tolist()
            if encoded
            else []
        )
        is_finite = {video.path: ok for video, ok in zip(encoded, finite, strict=True)}
        failed_now = []
        for video in outcomes:
            if isinstance(video, EncodedVideo) and is_finite[video.path]:
                self.failed.pop(video.path, None)
                self.failed_stats.pop(video.path, None)
                continue
            reason = video.reason if isinstance(video, FailedVideo) else NON_FINITE_REASON
            self._record_failure(video.path, reason)
            failed_now.append(video.path)
        if failed_now:  # once, when they fail: an unchanged failed file is not tried (nor reported) again
            logger.warning(
                "%d video(s) could not be decoded and are not in the index (see index.failed), e.g. %s",
                len(failed_now),
                "; ".join(f"{path}: {self.failed[path]}" for path in failed_now[:3]),
                extra={"failed_videos": failed_now},  # lets the search command, which lists them itself, drop it
            )
        if not all(finite):
            keep = [row for row, ok in enumerate(finite) if ok]
            features, encoded = features.take(torch.tensor(keep, dtype=torch.long)), [encoded[row] for row in keep]
        if encoded:
            self.store.append([video.path for video in encoded], features)
            self.entries.extend(video.fingerprint for video in encoded)

    def _record_failure(self, path: str, reason: str) -> None:
        self.failed[path] = reason
        try:
            stat = os.stat(path)
        except OSError:
            self.failed_stats.pop(path, None)  # a missing file: tried again once it exists
        else:
            self.failed_stats[path] = [stat.st_size, stat.st_mtime_ns]

    def _failed_and_unchanged(self, path: str) -> bool:
        """Whether `path` failed to decode before and still has the size and modification time it had then."""
        recorded = self.failed_stats.get(path)
        if path not in self.failed or recorded is None:
            return False
        try:
            stat = os.stat(path)
        except OSError:
            return False
        return [stat.st_size, stat.st_mtime_ns] == recorded

    def _require_model(self) -> None:
        if self.model is None or self.processor is None:
            raise ValueError(
                "This index has no model / processor: pass them to VideoIndex.load(path, model, processor)."
            )

    # ------------------------------------------------------------------ keeping in sync
    def add(
        self, videos: Iterable[str | os.PathLike], batch_size: int = 16, num_workers: int = 0, on_error: str = "skip"
    ) -> int:
        """Encodes videos not yet in the index and appends them; returns how many were added.

        A video that failed to decode before is tried again only if its file changed since (size or time).

        Args:
            videos (`Iterable[str | os.PathLike]`): video files, indexed or not.
            batch_size (`int`, *optional*, defaults to 16): videos per forward pass.
            num_workers (`int`, *optional*, defaults to 0): DataLoader workers decoding videos.
            on_error (`str`, *optional*, defaults to `"skip"`): `"skip"` or `"raise"` (see `build`).
        """
        self._require_model()
        known = set(self.paths)
        new = [p for p in _unique_paths(videos) if p not in known and not self._failed_and_unchanged(p)]
        before = len(self)
        options = EncodeOptions(batch_size, num_workers, on_error=on_error, storage_dtype=self.storage_dtype)
        self._encode_and_append(new, options)
        return len(self) - before

    def remove(self, videos: Iterable[str | os.PathLike]) -> int:
        """Drops videos (by path) from the index; returns how many were removed.

        Args:
            videos (`Iterable[str | os.PathLike]`): video files, indexed or not.
        """
        drop = set(_unique_paths(videos))
        for path in drop:
            self.failed.pop(path, None)
            self.failed_stats.pop(path, None)
        keep = [i for i, entry in enumerate(self.entries) if entry.path not in drop]
        removed = len(self) - len(keep)
        if removed:
            self.store.take(torch.tensor(keep, dtype=torch.long))
            self.entries = [self.entries[i] for i in keep]
        return removed

    def refresh(
        self, videos: Iterable[str | os.PathLike], batch_size: int = 16, num_workers: int = 0, on_error: str = "skip"
    ) -> dict[str, int]:
        """
        Makes the index hold exactly `videos` as they are on disk now: removes videos no longer listed or deleted,
        re-encodes changed files (size / time / content hash), adds new ones. Returns the counts per action.

        Args:
            videos (`Iterable[str | os.PathLike]`): every video file the index should hold, in index order.
            batch_size (`int`, *optional*, defaults to 16): videos per forward pass.
            num_workers (`int`, *optional*, defaults to 0): DataLoader workers decoding videos.
            on_error (`str`, *optional*, defaults to `"skip"`): `"skip"` or `"raise"` (see `build`).
        """
        wanted = _unique_paths(videos)
        wanted_set = set(wanted)
        gone = [e.path for e in self.entries if e.path not in wanted_set or not os.path.exists(e.path)]
        changed = [e.path for e in self.entries if e.path in wanted_set and e.path not in gone and not e.is_current()]
        self.remove(gone + changed)
        for path in list(self.failed):
            if path not in wanted_set:
                del self.failed[path]
                self.failed_stats.pop(path, None)
        added = self.add(wanted, batch_size, num_workers, on_error)
        # Keep the caller's order, so that the same folder always gives the same index.
        position = {path: i for i, path in enumerate(wanted)}
        order = sorted(range(len(self)), key=lambda i: position[self.entries[i].path])
        if order != list(range(len(self))):  # an unchanged folder costs no copy of the features
            self.store.take(torch.tensor(order, dtype=torch.long))
            self.entries = [self.entries[i] for i in order]
        return {"removed": len(gone), "reencoded": len(changed), "added": added - len(changed)}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Commits the index to `path` as a new version (one rename; see `storage.py`) and clears finished chunks.

        Args:
            path (`str` or `os.PathLike`): the index folder.

        Raises:
            IndexConflictError: this index was loaded from (or saved to) `path`, and another process has committed
                a newer version there since: saving would drop that process's changes. Load again and redo yours.
        """
        path = Path(path)
        manifest = {
            "model": self.signature,
            "videos": [entry.to_dict() for entry in self.entries],
            "failed": self.failed,
            "failed_stats": self.failed_stats,
        }
        features = self.store.saved()
        same_folder = self.path is not None and self.path.absolute() == path.absolute()
        self._version = commit_saved_index(path, manifest, features, self._version if same_folder else None)
        self.path = path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        model=None,
        processor=None,
        root: str | os.PathLike | None = None,
        mmap: bool = False,
    ) -> VideoIndex:
        """Reads the index committed at `path`; with a model, checks that it is the one the index was built with.

        Args:
            path (`str` or `os.PathLike`): the index folder.
            model (`DRLModel`, *optional*): the model to search with.
            processor (`DRLProcessor`, *optional*): its processor.
            root (`str` or `os.PathLike`, *optional*): if given, every indexed video must lie under this folder (an
                index edited to list other files is refused).
            mmap (`bool`, *optional*, defaults to `False`): map the saved features from disk instead of reading
                them: a large index loads in seconds and takes memory only for what searches touch (the sketch,
                re-ranked videos). Changing the index (`add`, `remove`, `refresh`) then reads it whole.

        Raises:
            IndexCorruptError: the folder is truncated, edited or of an older format (the message says to rebuild).
            IndexMismatchError: the model or video processor differs from the index's, or the vectors are in an
                engine (`QdrantVideoIndex.load` reads those).
        """
        saved = read_saved_index(path, root=root, mmap=mmap)
        if saved.engine is not None:
            raise IndexMismatchError(
                f"The video index at {path} keeps its vectors in {saved.engine}; load it with the class made "
                f"for it (e.g. QdrantVideoIndex.load(path, model, processor, client=client))."
            )
        store = MemoryStore.from_saved(saved.features, saved.signature.get("interaction"))
        return cls.from_saved(saved, store, model, processor)

    @classmethod
    def from_saved(cls, saved: SavedIndex, store: VideoStore, model=None, processor=None) -> VideoIndex:
        """The index `saved` describes, with its features in `store` (made from `saved.features`).

        Args:
            saved (`SavedIndex`): what `saved_index.read_saved_index` read.
            store (`VideoStore`): the store holding its features.
            model (`DRLModel`, *optional*): the model to search with (checked against the index's).
            processor (`DRLProcessor`, *optional*): its processor.
        """
        index = cls(
            saved.entries, store, saved.signature, model, processor, saved.failed, saved.path, saved.failed_stats
        )
        index._version = saved.version
        return index

    @classmethod
    def sync(
        cls,
        path: str | os.PathLike,
        model,
        processor,
        videos: Iterable[str | os.PathLike],
        root: str | os.PathLike | None = None,
        **build_options,
    ) -> VideoIndex:
        """The index saved at `path` brought up to date with `videos` (built on first use), saved again.

        Processes syncing one `path` take turns (the main process of each holds the folder's lock), so none loses
        what another indexed.

        Args:
            path (`str` or `os.PathLike`): the index folder.
            model (`DRLModel`): the model.
            processor (`DRLProcessor`): its processor.
            videos (`Iterable[str | os.PathLike]`): every video file the index should hold.
            root (`str` or `os.PathLike`, *optional*): passed to `load`.
            build_options: keyword arguments of `build` (`batch_size`, `num_workers` and `on_error` also apply
                to the refresh of an existing index).
        """
        return sync_index(
            path,
            videos,
            load=lambda: cls.load(path, model, processor, root=root),
            build=lambda: cls.build(model, processor, videos, path=path, **build_options),
            build_options=build_options,
        )

    # ------------------------------------------------------------------ search
    def search(
        self,
        texts: str | Sequence[str],
        top_k: int = 10,
        candidates: int | None = None,
        recall_target: float = DEFAULT_RECALL_TARGET,
    ) -> list[list[SearchHit]]:
        """
        The `top_k` videos for each text, best first, by exact DRL similarity.

        Args:
            texts (`str` or `Sequence[str]`): one query or a list of queries.
            top_k (`int`, *optional*, defaults to 10): how many videos to return per query.
            candidates (`int`, *optional*): `None` (default): candidates from every frame, re-ranked until the
                measured error bound rules the rest out (`sketch.py`); a number: a fixed-size stage instead, the
                best `candidates` videos by summary vector re-ranked (`candidates >= len(index)` is exhaustive).
            recall_target (`float`, *optional*, defaults to 0.999): the recall of the exact top `top_k` that the
                default stage aims at, in [0.5, 1): a higher target re-ranks more videos.
        """
        self._require_model()
        check_top_k(top_k)
        texts = [texts] if isinstance(texts, str) else list(texts)
        check_captions(texts, label="Query {}")  # before the processor, whose own check says "Caption"
        inputs = self.processor(text=texts, return_tensors="pt")
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            mask = inputs["attention_mask"].to(device)
            embeds = self.model.get_text_features(inputs["input_ids"].to(device), mask).text_embeds
            queries = prepare_queries(self.model, embeds, mask)
        queries = PreparedSide(queries.vectors.cpu().float(), queries.weights.cpu().float(), queries.summary.cpu())
        return self.search_prepared(queries, top_k, candidates, recall_target)

    def search_prepared(
        self,
        queries: PreparedSide,
        top_k: int = 10,
        candidates: int | None = None,
        recall_target: float = DEFAULT_RECALL_TARGET,
    ) -> list[list[SearchHit]]:
        """`search` for queries already prepared with `features.prepare_queries` (same arguments after the texts)."""
        check_top_k(top_k)
        if len(self) == 0:
            return [[] for _ in range(queries.summary.shape[0])]
        paths = self.paths
        return [
            [SearchHit(row, paths[row], score) for score, row in zip(ranking.scores, ranking.rows, strict=True)]
            for ranking in self.store.search(queries, top_k, candidates, recall_target)
        ]


def sync_index(
    path: str | os.PathLike,
    videos: Iterable[str | os.PathLike],
    load: Callable[[], VideoIndex],
    build: Callable[[], VideoIndex],
    build_options: dict,
) -> VideoIndex:
    """`VideoIndex.sync` for any store: `load` the index at `path` and refresh it with `videos`, or `build` it.

    Args:
        path (`str` or `os.PathLike`): the index folder.
        videos (`Iterable[str | os.PathLike]`): every video file the index should hold.
        load (`Callable[[], VideoIndex]`): loads the index committed at `path`.
        build (`Callable[[], VideoIndex]`): builds it at `path` from `videos`.
        build_options (`dict`): the `build` options, of which `REFRESH_OPTIONS` apply to the refresh.
    """
    path = Path(path)
    state = process_state()
    with index_lock(path) if state.is_main_process else contextlib.nullcontext():
        if not has_index(path):
            return build()
        index = load()
        counts = index.refresh(videos, **{key: value for key, value in build_options.items() if key in REFRESH_OPTIONS})
        if any(counts.values()) and state.is_main_process:
            index.save(path)
        return index


def check_top_k(top_k: int) -> None:
    """Raises a `ValueError` naming `top_k` unless it is a whole number of at least 1."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k!r}: the number of best videos to return per query.")


def _unique_paths(videos: Iterable[str | os.PathLike]) -> list[str]:
    if isinstance(videos, (str, os.PathLike)):
        raise TypeError("Pass a list of video paths (use modeling_tvr.search.find_videos(folder) for a folder).")
    return list(dict.fromkeys(os.path.abspath(os.fspath(v)) for v in videos))

"""VideoIndex: a user's video collection encoded once, saved, kept in sync with the files, searched in milliseconds.

    index = VideoIndex.build(model, processor, ["a.mp4", "b.mkv", ...], path="my_index")
    hits = index.search(["a dog catches a frisbee"], top_k=10)[0]   # [SearchHit(index, video, score), ...]
    index = VideoIndex.load("my_index", model, processor)           # later, in another process
    index.refresh(current_files)                                    # encode new / changed files, drop deleted ones

Building is resumable and distributed: encoded videos are flushed to `path/chunks/` every `save_every` batches, a
restarted build skips what its chunks already hold, and under `accelerate launch` (several processes, GPUs or nodes
sharing `path`) each process encodes its own shard of the remaining videos before the main process merges the
chunks. A video that fails to decode is reported (logged, kept in `index.failed` and the manifest), never silently
dropped; `on_error="raise"` stops at the first one instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers.utils import logging

from ..caption_checks import check_captions
from ..video_decoding import VideoReadError
from ..video_processing_drl import FRAME_SETTINGS
from .features import PreparedSide, prepare_queries, prepare_videos, two_stage_search
from .fingerprint import FileFingerprint
from .sketch import FrameSketch, adaptive_search
from .storage import (
    IndexConflictError,
    IndexCorruptError,
    IndexSpaceError,
    all_finite,
    commit_index,
    committed_version,
    has_index,
    index_lock,
    is_out_of_space,
    read_index,
    save_tensors,
    tensor_bytes,
)

logger = logging.get_logger(__name__)

CHUNK_DIR = "chunks"
# Recall of the exact top ten that the search aims at (sketch.py; measured recall: BENCHMARKS.md).
DEFAULT_RECALL_TARGET = 0.999
ON_ERROR_CHOICES = ("skip", "raise")


def _listed_under(base: str, listed: str) -> bool:
    """Whether `listed` names a file in the folder `base` (already resolved). The file's folder is resolved, the file
    itself is not: a link inside the folder to a video elsewhere is a video of the folder (the walk lists it), while
    a path edited to name a file elsewhere is not."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(listed)))
    return os.path.commonpath([base, folder]) == base


class IndexMismatchError(ValueError):
    """An index (or a partial build) was made with another model than the one given."""


__all__ = [
    "IndexConflictError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexSpaceError",
    "SearchHit",
    "VideoIndex",
    "index_signature",
    "model_signature",
]


@dataclass(frozen=True)
class EncodeOptions:
    """How videos are encoded into an index (see `VideoIndex.build` for each field)."""

    batch_size: int = 16
    num_workers: int = 0
    save_every: int = 64
    on_error: str = "skip"
    storage_dtype: torch.dtype = torch.float32
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {self.on_error!r}")
        for name in ("batch_size", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class SearchHit:
    """One ranked video: its position in the index, its path, and its exact DRL similarity to the query."""

    index: int
    video: str
    score: float


def model_signature(model) -> dict:
    """
    What must match between the model that built an index and the one that searches it: the interaction, the
    feature width, and a digest of every weight. The weights are hashed as fp16 values, so the same checkpoint
    loaded in fp32 or fp16 has one signature, while any change that survives fp16 rounding gives another.
    """
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        values = tensor.detach()
        values = values.to(torch.float16) if values.is_floating_point() else values
        digest.update(values.cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return {
        "interaction": model.config.interaction,
        "projection_dim": int(model.config.projection_dim),
        "weights_digest": digest.hexdigest(),
    }


# The video processor settings that change what a video is encoded to: an index built with others cannot take new
# videos (another frame count) or mixes two samplings.
# `max_pixels` only decides which files are refused, not what an indexed video is encoded to.
_VIDEO_SETTINGS = (
    *(name for name in FRAME_SETTINGS if name != "max_pixels"),
    *("do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std"),
)


def index_signature(model, processor) -> dict:
    """`model_signature` plus the video processor's sampling and preprocessing settings."""
    settings = _video_processor(processor).to_dict()
    video = json.loads(json.dumps({key: settings.get(key) for key in _VIDEO_SETTINGS}))  # as the manifest stores it
    return {**model_signature(model), "video_processor": video}


class _VideoFiles(Dataset):
    """Decodes and preprocesses one video per item; a failure becomes a reported item instead of a crash."""

    def __init__(self, paths: Sequence[str], video_processor):
        self.paths, self.video_processor = list(paths), video_processor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        path = self.paths[position]
        try:
            fingerprint = FileFingerprint.of(path)
            batch = self.video_processor(path)
        except (VideoReadError, OSError) as error:
            return path, None, None, None, f"{type(error).__name__}: {error}"
        return path, fingerprint, batch["pixel_values_videos"][0], batch["video_mask"][0], None


def _collate(items):
    good = [item for item in items if item[4] is None]
    failed = [(item[0], item[4]) for item in items if item[4] is not None]
    if not good:
        return [], None, None, failed
    return [item[1] for item in good], torch.stack([i[2] for i in good]), torch.stack([i[3] for i in good]), failed


def _write_atomically(tensors: dict[str, torch.Tensor], metadata: dict, target: Path) -> None:
    # A killed process leaves at most a stray temporary file, never a truncated chunk or index.
    partial = target.with_name(target.name + ".partial")
    try:
        save_tensors({k: v.contiguous() for k, v in tensors.items()}, partial, metadata={"json": json.dumps(metadata)})
        os.replace(partial, target)
    except (OSError, SafetensorError) as error:
        partial.unlink(missing_ok=True)
        if is_out_of_space(error):
            raise IndexSpaceError(target.parent, tensor_bytes(tensors)) from None
        raise


def _read_chunk(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as file:
        metadata = json.loads(file.metadata()["json"])
    return load_file(path), metadata


class VideoIndex:
    """
    Encoded videos with their file fingerprints; see the module docstring for the workflow.

    Args:
        entries: one `FileFingerprint` per indexed video, in index order.
        videos: their prepared features (normalised frames, frame weights, summaries).
        signature: `index_signature` of the model and processor that encoded them.
        model, processor: what `search` / `add` / `refresh` encode with (optional for a loaded index that is only
            searched with precomputed query features).
        failed: `{path: reason}` of videos that could not be decoded.
        path: the folder the index is saved in, if any.
        failed_stats: `{path: [size, mtime_ns]}` of the failed files when they failed: `add` / `refresh` do not try
            an unchanged failed file again (decoding it would fail again, on every run), only a changed one.
    """

    def __init__(
        self,
        entries: list[FileFingerprint],
        videos: PreparedSide,
        signature: dict,
        model=None,
        processor=None,
        failed: dict[str, str] | None = None,
        path: str | os.PathLike | None = None,
        failed_stats: dict[str, list[int]] | None = None,
    ):
        self.entries, self.videos, self.signature = list(entries), videos, signature
        self.model, self.processor = model, processor
        self.failed = dict(failed or {})
        self.failed_stats = {path: list(stat) for path, stat in (failed_stats or {}).items() if path in self.failed}
        self.path = Path(path) if path is not None else None
        self._version: str | None = None  # the committed version at `path` this copy was read from or saved as
        self._sketch: FrameSketch | None = None  # built on the first search, then kept in step with `videos`
        if model is not None:
            self._check_model(model, processor)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def paths(self) -> list[str]:
        """Absolute paths of the indexed videos, in index order."""
        return [entry.path for entry in self.entries]

    def _check_model(self, model, processor=None) -> None:
        signature = index_signature(model, processor) if processor is not None else model_signature(model)
        if any(self.signature.get(key) != value for key, value in signature.items()):
            raise IndexMismatchError(
                f"This index was built with another model or video processor ({self.signature}) than the one given "
                f"({signature}); "
                "rebuild it with the model you search with (delete the index folder or pass a new path)."
            )

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

    def _record_failure(self, path: str, reason: str) -> None:
        self.failed[path] = reason
        try:
            stat = os.stat(path)
        except OSError:
            self.failed_stats.pop(path, None)  # a missing file: tried again once it exists
        else:
            self.failed_stats[path] = [stat.st_size, stat.st_mtime_ns]

    def _require_model(self) -> None:
        if self.model is None or self.processor is None:
            raise ValueError(
                "This index has no model / processor: pass them to VideoIndex.load(path, model, processor)."
            )

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
        **engine_options,
    ) -> VideoIndex:
        """
        Encodes `videos` (file paths) with `model` and `processor` into a new index.

        Args:
            batch_size: videos per forward pass.
            path: folder to save the index in; needed for resuming and for several processes (which must share it).
                An interrupted build called again with the same `path` skips the videos its chunks already hold.
            num_workers: DataLoader workers decoding videos in parallel.
            save_every: flush encoded videos to `path/chunks/` every this many batches.
            on_error: "skip" (report undecodable videos in `index.failed`, the log and the manifest) or "raise".
            storage_dtype: dtype of the stored frame features; `torch.float16` halves memory (scores are computed
                in float32 either way).
            show_progress: a tqdm bar on the main process.
            engine_options: where an engine-backed index keeps its vectors (`QdrantVideoIndex`: `client`,
                `collection`).
        """
        options = EncodeOptions(batch_size, num_workers, save_every, on_error, storage_dtype, show_progress)
        signature = index_signature(model, processor)
        frames = _video_processor(processor).max_frames
        empty = PreparedSide(*_empty_features(model, frames, storage_dtype))
        index = cls._create_empty(empty, signature, model, processor, **engine_options)
        index.path = Path(path) if path is not None else None
        # The main process holds the folder's lock for the whole build: another build or sync of `path` waits.
        owns_lock = index.path is not None and _process_state().is_main_process
        with index_lock(index.path) if owns_lock else contextlib.nullcontext():
            index._encode_and_append(_unique_paths(videos), options)
            if owns_lock:
                index.save(index.path)
        return index

    def _encode_and_append(self, paths: list[str], options: EncodeOptions) -> None:
        """Encodes `paths` (sharded across processes, resuming from chunks) and appends them in the given order."""
        state = _process_state()
        if state.num_processes > 1 and self.path is None:
            raise ValueError("Building an index in several processes needs a shared `path` to collect their work.")
        chunk_dir = self.path / CHUNK_DIR if self.path is not None else None
        done = _load_chunks(chunk_dir, self.signature) if chunk_dir is not None and chunk_dir.is_dir() else {}
        # Videos that failed before are tried again: the file may have been fixed since.
        todo = [p for p in paths if p not in done or done[p][0] is None or not done[p][0].is_current()]
        encoded = self._encode_shard(todo[state.process_index :: state.num_processes], chunk_dir, options)
        if chunk_dir is not None:
            state.wait_for_everyone()  # every shard is on disk: read all of them back
            wanted = set(paths)
            encoded = {p: item for p, item in _load_chunks(chunk_dir, self.signature).items() if p in wanted}
            state.wait_for_everyone()  # nobody reads chunks any more: the main process may now merge and delete them
        self._append(paths, encoded, options.storage_dtype)

    def _encode_shard(self, paths: list[str], chunk_dir: Path | None, options: EncodeOptions) -> dict[str, tuple]:
        """`{path: (fingerprint, vectors, weights, summary)}` or `{path: (None, reason)}` for this process's share."""
        loader = DataLoader(
            _VideoFiles(paths, _video_processor(self.processor)),
            batch_size=options.batch_size,
            num_workers=options.num_workers,
            collate_fn=_collate,
        )
        device = next(self.model.parameters()).device
        pending: list[tuple] = []
        rank = _process_state().process_index
        show = options.show_progress and _process_state().is_local_main_process
        progress = tqdm(total=len(paths), desc="Indexing videos", unit="video", disable=not show)
        for batch_number, (fingerprints, pixels, masks, failed) in enumerate(loader, start=1):
            for path, reason in failed:
                if options.on_error == "raise":
                    raise VideoReadError(path, reason)
                pending.append((path, None, reason))
            if fingerprints:
                with torch.inference_mode():
                    embeds = self.model.get_video_features(pixels.to(device), masks.to(device)).video_embeds
                    prepared = prepare_videos(self.model, embeds, masks.to(device))
                for i, fingerprint in enumerate(fingerprints):
                    vectors = prepared.vectors[i].to("cpu", options.storage_dtype)
                    weights, summary = prepared.weights[i].cpu().float(), prepared.summary[i].cpu().float()
                    pending.append((fingerprint.path, fingerprint, vectors, weights, summary))
            progress.update(len(fingerprints) + len(failed))
            if chunk_dir is not None and batch_number % options.save_every == 0:
                _flush(pending, chunk_dir, rank, self.signature)
                pending = []
        progress.close()
        if chunk_dir is not None:
            _flush(pending, chunk_dir, rank, self.signature)
            return {}  # the caller reads every process's chunks back
        return {item[0]: item[1:] for item in pending}

    def _append(self, paths: list[str], encoded: dict[str, tuple], storage_dtype: torch.dtype) -> None:
        new_entries, vectors, weights, summaries = [], [], [], []
        failed_now = []
        for path in paths:
            item = encoded.get(path)
            if item is None:
                continue
            if item[0] is None:
                self._record_failure(path, item[1])
                failed_now.append(path)
                continue
            if not all(all_finite(tensor) for tensor in item[1:4]):
                # A NaN or infinite feature would score as the best (or no) match for every query.
                self._record_failure(path, "the model gave non-finite (NaN or infinite) features for this video")
                failed_now.append(path)
                continue
            self.failed.pop(path, None)
            self.failed_stats.pop(path, None)
            new_entries.append(item[0])
            vectors.append(item[1].to(storage_dtype))
            weights.append(item[2])
            summaries.append(item[3])
        if failed_now:  # once, when they fail: an unchanged failed file is not tried (nor reported) again
            logger.warning(
                "%d video(s) could not be decoded and are not in the index (see index.failed), e.g. %s",
                len(failed_now),
                "; ".join(f"{path}: {self.failed[path]}" for path in failed_now[:3]),
                extra={"failed_videos": failed_now},  # lets the search command, which lists them itself, drop it
            )
        if not new_entries:
            return
        added = PreparedSide(torch.stack(vectors), torch.stack(weights), torch.stack(summaries))
        self._store_append(new_entries, added)
        self.entries.extend(new_entries)

    # ------------------------------------------------------------------ where the features live
    # An engine-backed index (qdrant.py) overrides these four; everything else is shared.
    def _store_append(self, entries: list[FileFingerprint], videos: PreparedSide) -> None:
        """Appends the features of new videos (`entries` are not yet in `self.entries`)."""
        self.videos = PreparedSide(
            torch.cat([self.videos.vectors, videos.vectors]),
            torch.cat([self.videos.weights, videos.weights]),
            torch.cat([self.videos.summary, videos.summary]),
        )
        if self._sketch is not None:
            self._sketch = self._sketch.extended(videos.vectors)

    def _store_take(self, rows: torch.Tensor) -> None:
        """Keeps the features of the videos at `rows`, in that order (removal, reordering)."""
        self.videos = self.videos.take(rows)
        if self._sketch is not None:
            self._sketch = self._sketch.take(rows)

    def _store_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """What `save` writes beside the manifest: tensors with one row per video, and shared ones. The sketch the
        default search starts from is built here if no search built it yet and saved with the features, so that
        every later load (each run of the search command) finds it instead of computing it again."""
        tensors = {"vectors": self.videos.vectors, "weights": self.videos.weights, "summary": self.videos.summary}
        if self.signature.get("interaction") == "dp" or len(self) == 0:
            return tensors, {}  # DP searches its summaries; an empty index has no frames to take directions from
        sketch = self.sketch
        tensors |= {"sketch_frames": sketch.frames, "sketch_residuals": sketch.residuals}
        return tensors, {"sketch_basis": sketch.basis}

    def _manifest_extra(self) -> dict:
        """Entries of the manifest beyond the videos and the model (an engine-backed index names its engine)."""
        return {}

    @property
    def storage_dtype(self) -> torch.dtype:
        """The dtype frame vectors are stored in."""
        return self.videos.vectors.dtype

    # ------------------------------------------------------------------ keeping in sync
    def add(
        self, videos: Iterable[str | os.PathLike], batch_size: int = 16, num_workers: int = 0, on_error: str = "skip"
    ) -> int:
        """Encodes videos not yet in the index and appends them; returns how many were added.

        A video that failed to decode before is tried again only if its file changed since (size or time).
        """
        self._require_model()
        known = set(self.paths)
        new = [p for p in _unique_paths(videos) if p not in known and not self._failed_and_unchanged(p)]
        before = len(self)
        options = EncodeOptions(batch_size, num_workers, on_error=on_error, storage_dtype=self.storage_dtype)
        self._encode_and_append(new, options)
        return len(self) - before

    def remove(self, videos: Iterable[str | os.PathLike]) -> int:
        """Drops videos (by path) from the index; returns how many were removed."""
        drop = set(_unique_paths(videos))
        for path in drop:
            self.failed.pop(path, None)
            self.failed_stats.pop(path, None)
        keep = [i for i, entry in enumerate(self.entries) if entry.path not in drop]
        removed = len(self) - len(keep)
        if removed:
            self._store_take(torch.tensor(keep, dtype=torch.long))
            self.entries = [self.entries[i] for i in keep]
        return removed

    def refresh(
        self, videos: Iterable[str | os.PathLike], batch_size: int = 16, num_workers: int = 0, on_error: str = "skip"
    ) -> dict[str, int]:
        """
        Makes the index hold exactly `videos` as they are on disk now: removes videos no longer listed or deleted,
        re-encodes changed files (size / time / content hash), adds new ones. Returns the counts per action.
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
            self._store_take(torch.tensor(order, dtype=torch.long))
            self.entries = [self.entries[i] for i in order]
        return {"removed": len(gone), "reencoded": len(changed), "added": added - len(changed)}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Commits the index to `path` as a new version (one rename; see `storage.py`) and clears finished chunks.

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
            **self._manifest_extra(),
        }
        tensors, shared = self._store_tensors()
        with index_lock(path):
            current = committed_version(path)
            same_folder = self.path is not None and self.path.absolute() == path.absolute()
            if self._version is not None and same_folder and current != self._version:
                raise IndexConflictError(
                    f"The video index at {path} was changed by another process (version {current}) since this copy "
                    f"was read (version {self._version}); saving would drop those changes. Load it again and repeat "
                    "this change, or use VideoIndex.sync, which waits for other processes."
                )
            self._version = commit_index(path, tensors, manifest, shared)
            chunk_dir = path / CHUNK_DIR
            if chunk_dir.is_dir():
                for chunk in chunk_dir.glob("*.safetensors"):
                    chunk.unlink()
                chunk_dir.rmdir()
        self.path = path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        model=None,
        processor=None,
        root: str | os.PathLike | None = None,
        mmap: bool = False,
        **engine_options,
    ) -> VideoIndex:
        """Reads the index committed at `path`; with a model, checks that it is the one the index was built with.

        Args:
            root: if given, every indexed video must lie under this folder (an index edited to list other files is
                refused).
            mmap: map the saved features from disk instead of reading them: a large index loads in seconds and
                takes memory only for what searches touch (the sketch, re-ranked videos). Changing the index
                (`add`, `remove`, `refresh`) then reads it whole.

        Raises:
            IndexCorruptError: the folder is truncated, edited or of an older format (the message says to rebuild).
            IndexMismatchError: the model or video processor differs from the index's.
        """
        path = Path(path)
        tensors, manifest, version = read_index(path, mmap=mmap)
        if "engine" in manifest and cls._engine_name() != manifest["engine"]:
            raise IndexMismatchError(
                f"The video index at {path} keeps its vectors in {manifest['engine']}; load it with the class made "
                f"for it (e.g. QdrantVideoIndex.load(path, client, model, processor))."
            )
        try:
            entries = [FileFingerprint(**entry) for entry in manifest["videos"]]
            signature = manifest["model"]
        except (KeyError, TypeError) as error:
            raise IndexCorruptError(path, f"the manifest's video entries are malformed ({error})") from None
        if root is not None:
            base = os.path.realpath(os.path.expanduser(root))
            outside = [e.path for e in entries if not _listed_under(base, e.path)]
            if outside:
                raise IndexCorruptError(path, f"{len(outside)} listed video(s) lie outside {root}, e.g. {outside[0]}")
        index = cls._from_storage(tensors, manifest, entries, signature, model, processor, path, **engine_options)
        index._version = version
        return index

    #: Keyword arguments of `build` / `load` that say where an engine-backed index keeps its vectors.
    ENGINE_OPTIONS: tuple[str, ...] = ()

    @classmethod
    def _create_empty(cls, empty: PreparedSide, signature: dict, model, processor, **engine_options) -> VideoIndex:
        """A new index without videos (an engine-backed index creates its collection here)."""
        if engine_options:
            raise TypeError(f"VideoIndex.build got unexpected options {sorted(engine_options)}.")
        return cls([], empty, signature, model, processor)

    @classmethod
    def _engine_name(cls) -> str | None:
        """The `engine` a saved index of this class records (None: the vectors are in the index folder)."""
        return None

    @classmethod
    def _from_storage(cls, tensors, manifest, entries, signature, model, processor, path, **engine_options):
        """The index object for what `load` read (an engine-backed index connects to its engine here)."""
        if engine_options:
            raise TypeError(f"VideoIndex.load got unexpected options {sorted(engine_options)}.")
        videos = PreparedSide(tensors["vectors"], tensors["weights"], tensors["summary"])
        failed, failed_stats = manifest.get("failed"), manifest.get("failed_stats")
        index = cls(entries, videos, signature, model, processor, failed, path, failed_stats)
        if "sketch_basis" in tensors:
            index._sketch = FrameSketch(tensors["sketch_basis"], tensors["sketch_frames"], tensors["sketch_residuals"])
        return index

    @classmethod
    def sync(
        cls,
        path: str | os.PathLike,
        model,
        processor,
        videos: Iterable[str | os.PathLike],
        root: str | os.PathLike | None = None,
        **build_kwargs,
    ) -> VideoIndex:
        """The index saved at `path` brought up to date with `videos` (built on first use), saved again.

        Processes syncing one `path` take turns (the main process of each holds the folder's lock), so none loses
        what another indexed; `root` is passed to `load`.
        """
        path = Path(path)
        state = _process_state()
        with index_lock(path) if state.is_main_process else contextlib.nullcontext():
            if has_index(path):
                engine_options = {k: v for k, v in build_kwargs.items() if k in cls.ENGINE_OPTIONS}
                index = cls.load(path, model, processor, root=root, **engine_options)
                refresh_options = ("batch_size", "num_workers", "on_error")
                counts = index.refresh(videos, **{k: v for k, v in build_kwargs.items() if k in refresh_options})
                if any(counts.values()) and state.is_main_process:
                    index.save(path)
                return index
            return cls.build(model, processor, videos, path=path, **build_kwargs)

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
            texts: one query or a list of queries.
            candidates: `None` (default): candidates from every frame, re-ranked until the measured error bound
                rules the rest out (`sketch.py`); a number: the older fixed-size stage instead, the best
                `candidates` videos by summary vector re-ranked (`candidates >= len(index)` is exhaustive search).
            recall_target: the recall of the exact top `top_k` that the default stage aims at, in [0.5, 1): a
                higher target re-ranks more videos.
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

    @property
    def sketch(self) -> FrameSketch:
        """The frame sketch the default search starts from (`sketch.FrameSketch`), built on first use."""
        if self._sketch is None:
            self._sketch = FrameSketch.build(self.videos)
        return self._sketch

    def search_prepared(
        self,
        queries: PreparedSide,
        top_k: int = 10,
        candidates: int | None = None,
        recall_target: float = DEFAULT_RECALL_TARGET,
    ) -> list[list[SearchHit]]:
        """`search` for queries already prepared with `features.prepare_queries`."""
        check_top_k(top_k)
        if len(self) == 0:
            return [[] for _ in range(queries.summary.shape[0])]
        interaction = self.signature["interaction"]
        if candidates is not None or interaction == "dp":  # DP's summaries are its exact embeddings
            scores, indices = two_stage_search(queries, self.videos, interaction, top_k, candidates or len(self))
            rows = list(zip(scores.tolist(), indices.tolist(), strict=True))
        else:
            rows = []
            for position in range(queries.summary.shape[0]):
                query = queries.take(slice(position, position + 1))
                scores, indices, _ = adaptive_search(query, self.videos, self.sketch, top_k, recall_target)
                rows.append((scores.tolist(), indices.tolist()))
        paths = self.paths
        return [
            [SearchHit(int(i), paths[int(i)], float(s)) for s, i in zip(row_scores, row_indices, strict=True)]
            for row_scores, row_indices in rows
        ]


def check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k!r}: the number of best videos to return per query.")


def _process_state() -> PartialState:
    # Without an accelerator, Accelerate only sets up several processes (gloo) when asked for the CPU explicitly;
    # an Accelerator or PartialState the caller created first is reused as it is.
    return PartialState(cpu=not torch.accelerator.is_available())


def _video_processor(processor):
    return getattr(processor, "video_processor", None) or processor


def _unique_paths(videos: Iterable[str | os.PathLike]) -> list[str]:
    if isinstance(videos, (str, os.PathLike)):
        raise TypeError("Pass a list of video paths (use modeling_tvr.search.find_videos(folder) for a folder).")
    return list(dict.fromkeys(os.path.abspath(os.fspath(v)) for v in videos))


def _empty_features(model, frames: int, storage_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dim = model.config.projection_dim
    return torch.zeros(0, frames, dim, dtype=storage_dtype), torch.zeros(0, frames), torch.zeros(0, dim)


def _flush(pending: list[tuple], chunk_dir: Path, rank: int, signature: dict) -> None:
    if not pending:
        return
    chunk_dir.mkdir(parents=True, exist_ok=True)
    number = len(list(chunk_dir.glob(f"rank{rank:05d}-*.safetensors")))
    good = [item for item in pending if item[1] is not None]
    metadata = {
        "model": signature,
        "videos": [item[1].to_dict() for item in good],
        "failed": {item[0]: item[2] for item in pending if item[1] is None},
    }
    tensors = {
        "vectors": torch.stack([item[2] for item in good]) if good else torch.zeros(0),
        "weights": torch.stack([item[3] for item in good]) if good else torch.zeros(0),
        "summary": torch.stack([item[4] for item in good]) if good else torch.zeros(0),
    }
    _write_atomically(tensors, metadata, chunk_dir / f"rank{rank:05d}-{number:06d}.safetensors")


def _load_chunks(chunk_dir: Path, signature: dict) -> dict[str, tuple]:
    """Everything the chunk files of an earlier or parallel run hold, as `_encode_shard` returns it."""
    results: dict[str, tuple] = {}
    for chunk in sorted(chunk_dir.glob("*.safetensors")):
        tensors, metadata = _read_chunk(chunk)
        if metadata["model"] != signature:
            raise IndexMismatchError(
                f"{chunk} was written by another model than the one given; delete {chunk_dir} to start over."
            )
        for i, entry in enumerate(metadata["videos"]):
            fingerprint = FileFingerprint(**entry)
            results[fingerprint.path] = (
                fingerprint,
                tensors["vectors"][i],
                tensors["weights"][i],
                tensors["summary"][i],
            )
        for path, reason in metadata["failed"].items():
            results[path] = (None, reason)
    return results

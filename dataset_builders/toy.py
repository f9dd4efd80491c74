"""A synthetic text-video retrieval benchmark, generated on the fly.

Every video shows one coloured shape sliding in a straight line over a dark background, and every caption names the
shape's colour, its kind and its direction of motion ("a red circle moves to the left"). Because all
`len(COLOURS) * len(SHAPES) * len(MOTIONS)` combinations occur, telling two captions apart needs colour, shape *and*
motion. Shapes never turn to face their direction, so the direction has to be read from how the frames change.

The benchmark is deterministic: the same options (seed, sizes, ...) give the same rows and videos whose decoded frames
are identical on every machine. Videos are rendered with numpy and written as lossless H.264 MP4 (`qp=0`) with PyAV:
lossy x264 output can differ between two processes on the same machine, whereas a lossless file decodes to exactly the
rendered frames whatever choices the encoder makes (each file is checked for this when written). The file bytes may
still differ between FFmpeg / x264 builds; the frames may not. Building the default configuration (432 videos of 64x64
px, 3 s at 8 fps) takes a few seconds.

Splits (with the defaults):

- `test`: one video per combination (72 videos), one caption each.
- `train`: the remaining `num_videos - 72` videos (288), two captions each (576 rows).
- `validation`: `num_validation_videos` extra videos (72, one per combination) drawn from a separate random stream, one
  caption each. Set `num_validation_videos=0` to leave the split out.

A split without rows is left out (`train` when `num_videos == 72`).

Files land in `<data_dir or $XDG_CACHE_HOME/modeling_tvr/toy>/<options key>/videos/` (`video_dir` overrides the video
folder), next to a `manifest.json` holding, for every file, the SHA-256 of its bytes and of its decoded frames
(`frames`, the same on every machine). A later build re-uses a file only when its byte hash matches the manifest,
so a truncated or otherwise damaged video is re-rendered rather than trusted; files are written under a temporary
name and renamed into place, so a killed build never leaves a half file under a real name.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import datasets
import numpy as np
from av.video.reformatter import ColorRange, Colorspace
from filelock import FileLock

from .schema import benchmark_features

__all__ = [
    "COLOURS",
    "COMBINATIONS",
    "MOTIONS",
    "SHAPES",
    "ToyBenchmark",
    "ToyBenchmarkConfig",
    "ToyEncodingError",
    "prepare_toy_videos",
    "toy_cache_root",
]

# Bump whenever rendering, encoding, captions or split assignment change: it is part of the options key, so old
# caches are never mistaken for the new ones.
GENERATOR_VERSION = 2

# Colour name -> nominal RGB. Each video jitters its colour a little around this value.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (35, 195, 55),
    "blue": (45, 90, 245),
    "yellow": (240, 220, 35),
    "purple": (155, 55, 215),
    "orange": (250, 135, 20),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down")
# Every (colour, shape, motion) triple, in the order videos are assigned to them.
COMBINATIONS: tuple[tuple[str, str, str], ...] = tuple(itertools.product(COLOURS, SHAPES, MOTIONS))

# Unit step in image coordinates (x grows to the right, y grows downwards).
_MOTION_VECTORS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# Two phrasings per direction; each has the bare direction word, so captions always contain it as a word.
_DIRECTION_PHRASES: dict[str, tuple[str, str]] = {
    "left": ("to the left", "left"),
    "right": ("to the right", "right"),
    "up": ("up", "straight up"),
    "down": ("down", "straight down"),
}
_CAPTION_TEMPLATES: tuple[str, ...] = (
    "a {colour} {shape} moves {direction}",
    "a {colour} {shape} slides {direction} across the screen",
    "the {colour} {shape} is moving {direction}",
    "a {colour} {shape} travels {direction} over a dark background",
    "a {shape} in {colour} heading {direction}",
)
_CAPTIONS_PER_SPLIT = {"train": 2, "test": 1, "validation": 1}
# Separate random streams so the validation videos are never copies of train/test ones.
_STREAMS = {"main": 0, "validation": 1}


def toy_cache_root() -> Path:
    """Return the default folder for generated toy benchmarks.

    Returns:
        `Path`: `$XDG_CACHE_HOME/modeling_tvr/toy` (`~/.cache` without XDG_CACHE_HOME).
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modeling_tvr" / "toy"


@dataclass
class ToyBenchmarkConfig(datasets.BuilderConfig):
    """Options of the synthetic benchmark.

    Args:
        seed (`int`, *optional*, defaults to `0`):
            Seed of every random choice (positions, sizes, speeds, backgrounds, caption templates).
        num_videos (`int`, *optional*, defaults to `360`):
            Videos in `train` + `test`; at least `len(COMBINATIONS)` (72) so that `test` holds every combination once.
            Video `i` shows combination `i % 72`; the first 72 form `test`, the rest `train` (so with exactly 72 there
            is no `train` split).
        num_validation_videos (`int`, *optional*, defaults to `72`):
            Videos in the extra `validation` split (0 disables the split).
        seconds (`float`, *optional*, defaults to `3.0`):
            Duration of each video.
        fps (`int`, *optional*, defaults to `8`):
            Frame rate; each video has `round(seconds * fps)` frames.
        size (`int`, *optional*, defaults to `64`):
            Width and height in pixels (even, as H.264 with 4:2:0 chroma needs even sides).
        video_dir (`str`, *optional*):
            Folder for the video files; `<data_dir or cache root>/<options key>/videos` when `None`.
    """

    seed: int = 0
    num_videos: int = 360
    num_validation_videos: int = 72
    seconds: float = 3.0
    fps: int = 8
    size: int = 64
    video_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate()

    def validate(self) -> None:
        """Check that the options can produce a valid benchmark.

        Raises:
            ValueError: If they cannot, saying which option is wrong.
        """
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.num_videos < len(COMBINATIONS):
            raise ValueError(
                f"num_videos must be at least {len(COMBINATIONS)} so that the test split holds every "
                f"colour/shape/motion combination, got {self.num_videos}"
            )
        if self.num_validation_videos < 0:
            raise ValueError(f"num_validation_videos must be >= 0, got {self.num_validation_videos}")
        if self.fps <= 0 or self.num_frames < 2:
            raise ValueError(f"need fps > 0 and at least 2 frames, got seconds={self.seconds}, fps={self.fps}")
        if self.size < 32 or self.size % 2:
            raise ValueError(f"size must be an even number >= 32, got {self.size}")

    @property
    def num_frames(self) -> int:
        """Frames per video."""
        return int(round(self.seconds * self.fps))

    def generation_options(self) -> dict[str, Any]:
        """The options that determine the generated files and rows (not where they are stored)."""
        return {
            "generator_version": GENERATOR_VERSION,
            "seed": int(self.seed),
            "num_videos": int(self.num_videos),
            "num_validation_videos": int(self.num_validation_videos),
            "seconds": float(self.seconds),
            "fps": int(self.fps),
            "size": int(self.size),
        }

    def options_key(self) -> str:
        """Return a folder name unique to `generation_options`: a readable prefix plus a short hash."""
        blob = json.dumps(self.generation_options(), sort_keys=True).encode()
        digest = hashlib.sha256(blob).hexdigest()[:12]
        return f"seed{self.seed}-n{self.num_videos}-{digest}"

    def build_dir(self) -> Path:
        """Return the folder of this configuration: `<data_dir or toy_cache_root()>/<options key>`."""
        root = Path(self.data_dir).expanduser() if self.data_dir else toy_cache_root()
        return (root / self.options_key()).absolute()

    def resolved_video_dir(self) -> Path:
        """Return the folder the video files are written to."""
        return Path(self.video_dir).expanduser().absolute() if self.video_dir else self.build_dir() / "videos"


@dataclass(frozen=True)
class _VideoPlan:
    """Everything needed to render one video and write its rows; derived only from the options and the index."""

    video_id: str
    split: str
    colour: str
    shape: str
    motion: str
    rgb: tuple[int, int, int]
    background: tuple[int, int, int]
    radius: float
    start_xy: tuple[float, float]
    displacement: float
    captions: tuple[str, ...]


def _plan_video(config: ToyBenchmarkConfig, stream: str, index: int) -> _VideoPlan:
    # One generator per video, seeded by (seed, stream, index): a video never depends on how many others exist.
    rng = np.random.default_rng([config.seed, _STREAMS[stream], index])
    colour, shape, motion = COMBINATIONS[index % len(COMBINATIONS)]
    if stream == "validation":
        split, video_id = "validation", f"toy_val_{index:04d}"
    else:
        split, video_id = ("test" if index < len(COMBINATIONS) else "train"), f"toy_{index:04d}"

    size = config.size
    rgb = tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in COLOURS[colour])
    # Dark, so the shape is always the bright part of the frame (which the tests rely on).
    background = tuple(int(v) for v in rng.integers(0, 45, size=3))
    radius = float(size * rng.uniform(0.09, 0.14))
    margin = radius * 1.15 + 2  # the triangle's corners reach 1.1 * radius from its centre
    displacement = float(size * rng.uniform(0.3, 0.45))
    dx, dy = _MOTION_VECTORS[motion]
    along_low, along_high = margin, size - margin - displacement  # start range when moving towards +axis
    along = float(rng.uniform(along_low, along_high))
    if dx < 0 or dy < 0:  # moving towards -axis: mirror the start so the whole path stays inside the frame
        along = size - along
    across = float(rng.uniform(margin, size - margin))
    start_xy = (along, across) if dx else (across, along)

    templates = rng.permutation(len(_CAPTION_TEMPLATES))[: _CAPTIONS_PER_SPLIT[split]]
    captions = tuple(
        _CAPTION_TEMPLATES[t].format(
            colour=colour, shape=shape, direction=_DIRECTION_PHRASES[motion][int(rng.integers(2))]
        )
        for t in templates
    )
    return _VideoPlan(video_id, split, colour, shape, motion, rgb, background, radius, start_xy, displacement, captions)


def _shape_mask(shape: str, xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, radius: float) -> np.ndarray:
    if shape == "circle":
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
    if shape == "square":
        half = radius * 0.88  # about the circle's area
        return (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
    # Upward-pointing equilateral triangle with circumradius 1.1 * radius, whatever the motion, so its orientation
    # gives away nothing about the direction.
    r = radius * 1.1
    top_y, base_y, half_base = cy - r, cy + r / 2, r * np.sqrt(3) / 2
    # Inside when below both slanted edges and above the base; the edge's half-width grows linearly from the apex.
    rel = (ys - top_y) / (base_y - top_y)
    return (ys <= base_y) & (rel >= 0) & (np.abs(xs - cx) <= rel * half_base)


# BT.601 RGB -> limited-range YCbCr (rows: Y, Cb, Cr), the matrix decoders assume for untagged SD video.
_RGB_TO_YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], np.float32
) / np.float32(255)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)


def _block_mean(planes: np.ndarray) -> np.ndarray:
    """Mean over 2x2 pixel blocks of the two axes after the first one (4:2:0 chroma subsampling)."""
    return (planes[:, 0::2, 0::2] + planes[:, 1::2, 0::2] + planes[:, 0::2, 1::2] + planes[:, 1::2, 1::2]) / 4


def _render_yuv420p(plan: _VideoPlan, config: ToyBenchmarkConfig) -> np.ndarray:
    """Render the video as planar yuv420p frames, shape `(frames, size * 3 // 2, size)`, uint8.

    The frames are painted straight in BT.601 limited-range YCbCr (a frame is just a static background plus one flat
    colour under a mask) instead of being drawn in RGB and converted: this is several times faster than swscale on
    many tiny frames, and does not depend on the FFmpeg version, so the encoder's input is the same everywhere.
    """
    size, n = config.size, config.num_frames
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # pixel centres
    # A gentle static vertical gradient makes backgrounds differ beyond a flat colour without moving.
    shade = (ys[..., None] / size - 0.5) * 16
    background = np.rint(np.clip(np.asarray(plan.background, np.float32) + shade, 0, 255))
    background_ycc = background @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET  # (size, size, 3)
    shape_ycc = np.asarray(plan.rgb, np.float32) @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET  # (3,)

    dx, dy = _MOTION_VECTORS[plan.motion]
    steps = plan.displacement * np.arange(n, dtype=np.float32) / (n - 1)
    cx = (plan.start_xy[0] + dx * steps)[:, None, None]
    cy = (plan.start_xy[1] + dy * steps)[:, None, None]
    mask = _shape_mask(plan.shape, xs[None], ys[None], cx, cy, plan.radius)  # (n, size, size)

    luma = np.where(mask, shape_ycc[0], background_ycc[None, ..., 0])
    # A chroma sample averages its 2x2 block, so it mixes shape and background by the share of the block covered.
    coverage = _block_mean(mask.astype(np.float32))[..., None]  # (n, size/2, size/2, 1)
    background_chroma = _block_mean(background_ycc[None, ..., 1:])  # (1, size/2, size/2, 2)
    chroma = background_chroma + coverage * (shape_ycc[1:] - background_chroma)
    planes = [luma.reshape(n, -1), chroma[..., 0].reshape(n, -1), chroma[..., 1].reshape(n, -1)]
    return np.clip(np.rint(np.concatenate(planes, axis=1)), 0, 255).astype(np.uint8).reshape(n, size * 3 // 2, size)


class ToyEncodingError(RuntimeError):
    """The FFmpeg build at hand did not write a toy video that decodes back to exactly the rendered frames."""


def _frames_digest(frames: np.ndarray) -> str:
    """SHA-256 of yuv420p frames as `_render_yuv420p` lays them out: the identity of a video's content."""
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


def _decoded_yuv420p(path: Path) -> np.ndarray:
    """All frames of `path` as yuv420p planes stacked like `_render_yuv420p`'s output."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)])


def _encode(frames: np.ndarray, fps: int, path: Path) -> str:
    """Write yuv420p `frames` (see `_render_yuv420p`) as lossless H.264 MP4 to `path`, atomically.

    The file is written under a temporary name in the same folder, decoded and compared with `frames`, and renamed into
    place only once it is complete and exact.

    Returns:
        `str`: `_frames_digest` of the frames, which the file decodes to exactly.

    Raises:
        ToyEncodingError: If the written file does not decode to `frames` (an FFmpeg build whose libx264 ignores
            `qp=0`, for example).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # format= because the temporary suffix does not tell FFmpeg which muxer to use; bitexact keeps the muxer
        # from embedding anything that changes between runs.
        with av.open(tmp_name, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1] * 2 // 3
            stream.pix_fmt = "yuv420p"
            stream.time_base = Fraction(1, fps)
            # Tag the colour conversion done by _render_yuv420p so players and decoders invert the same one.
            codec = stream.codec_context
            codec.colorspace = Colorspace.ITU601
            codec.color_range = ColorRange.MPEG
            codec.thread_count = 1
            # qp=0 is lossless: the decoded frames are the rendered ones exactly, however x264 decides (lossy
            # settings can give other frames in another process, even with one thread and bitexact).
            stream.options = {"qp": "0", "preset": "medium"}
            for t, yuv in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts = t
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        decoded = _decoded_yuv420p(Path(tmp_name))
        if decoded.shape != frames.shape or not np.array_equal(decoded, frames):
            raise ToyEncodingError(
                f"{path.name}: the encoded video does not decode to the rendered frames, so the toy benchmark would "
                f"differ between machines. PyAV {av.__version__} with FFmpeg {av.library_versions.get('libavcodec')} "
                "must provide libx264 with lossless (qp=0) encoding; install PyAV's own wheel (pip install av)."
            )
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return _frames_digest(frames)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=1, sort_keys=True)
        os.replace(tmp_name, path)
    except BaseException:
        # A failed write (disk full, an unserialisable value) must not leave a hidden temporary file per attempt.
        Path(tmp_name).unlink(missing_ok=True)
        raise


def prepare_toy_videos(config: ToyBenchmarkConfig) -> dict[str, list[dict[str, Any]]]:
    """Generate (or verify) the videos of `config` and return the rows of every split.

    A video already on disk is kept only if the SHA-256 of its bytes matches the manifest written by the build that
    produced it with the same options; anything else (missing, truncated, from other options, not in the manifest) is
    rendered again. A file lock makes concurrent builds of the same folder wait for each other.

    Args:
        config (`ToyBenchmarkConfig`):
            The options.

    Returns:
        `dict[str, list[dict[str, Any]]]`: `{split: [row, ...]}` with rows following the shared benchmark schema, in a
        fixed order; splits without rows are left out.

    Raises:
        ValueError: If the options cannot produce a valid benchmark.
        ToyEncodingError: If the FFmpeg build at hand cannot write a video that decodes to the rendered frames.
    """
    config.validate()
    video_dir = config.resolved_video_dir()
    video_dir.mkdir(parents=True, exist_ok=True)
    options = config.generation_options()
    plans = [_plan_video(config, "main", i) for i in range(config.num_videos)]
    plans += [_plan_video(config, "validation", i) for i in range(config.num_validation_videos)]

    manifest_path = video_dir / "manifest.json"
    with FileLock(str(video_dir / ".build.lock")):
        known: dict[str, dict[str, str]] = {}
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
                if manifest.get("options") == options:
                    files = manifest.get("files", {})
                    known = {name: entry for name, entry in files.items() if isinstance(entry, dict)}
            except (OSError, ValueError):
                known = {}  # an unreadable manifest vouches for nothing
        entries: dict[str, dict[str, str]] = {}
        for plan in plans:
            name = f"{plan.video_id}.mp4"
            path = video_dir / name
            entry = known.get(name)
            if entry is not None and path.is_file() and _sha256(path) == entry.get("sha256"):
                entries[name] = entry
                continue
            # A serial loop on purpose: the cost is mostly x264 set-up per file, which holds the GIL, so threads do
            # not help, and starting processes would cost about as much as the few seconds the whole build takes.
            frames_digest = _encode(_render_yuv420p(plan, config), config.fps, path)
            entries[name] = {"sha256": _sha256(path), "frames": frames_digest}
        if entries != known:
            _write_json_atomic(manifest_path, {"options": options, "files": entries})

    rows: dict[str, list[dict[str, Any]]] = {"train": [], "test": [], "validation": []}
    for plan in plans:
        path = str(video_dir / f"{plan.video_id}.mp4")
        for caption in plan.captions:
            rows[plan.split].append(
                {"video_id": plan.video_id, "video": path, "caption": caption, "start": None, "end": None}
            )
    # datasets cannot read back a split without rows, so empty splits (train when num_videos == 72, validation when
    # num_validation_videos == 0) are left out.
    return {split: split_rows for split, split_rows in rows.items() if split_rows}


class ToyBenchmark(datasets.GeneratorBasedBuilder):
    """`datasets` builder of the synthetic coloured-shapes benchmark (see the module docstring).

    Use it directly (`datasets` 4+ does not run loading scripts):

    ```python
    builder = ToyBenchmark(seed=0, num_videos=360, data_dir="/tmp/toy", cache_dir="/tmp/toy/arrow")
    builder.download_and_prepare()
    test = builder.as_dataset("test")
    ```

    or through `dataset_builders.load_benchmark`, which also places the Arrow cache next to the videos.
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = ToyBenchmarkConfig
    # No predefined configs: datasets then builds the config from the keyword arguments, which runs its validation.
    BUILDER_CONFIGS: list[ToyBenchmarkConfig] = []
    config: ToyBenchmarkConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The Arrow cache path is keyed on the options, but not on the generator code: the cache "hash" folder
        # keeps rows written by an older generator from being served.
        kwargs.setdefault("hash", f"gen{GENERATOR_VERSION}")
        super().__init__(*args, **kwargs)
        self._rows: dict[str, list[dict[str, Any]]] | None = None

    @classmethod
    def default_cache_dir(cls, config: ToyBenchmarkConfig) -> str:
        """Return the Arrow cache folder `load_benchmark` uses: `<build dir>/arrow`, distinct per option set."""
        return str(config.build_dir() / "arrow")

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Synthetic videos of coloured shapes moving left/right/up/down, with captions naming "
            "colour, shape and motion.",
            features=benchmark_features(),
        )

    def prepare_videos(self) -> dict[str, list[dict[str, Any]]]:
        """Generate or verify this configuration's videos; return `{split: rows}` (see `prepare_toy_videos`)."""
        self._rows = prepare_toy_videos(self.config)
        return self._rows

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """Make sure the videos exist and are intact, then build (or reuse) the Arrow cache of the rows.

        The videos are checked even when the Arrow cache is reused, since the cached rows point at files that may
        have been deleted or damaged since.
        """
        self.prepare_videos()
        super().download_and_prepare(*args, **kwargs)

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        # download_and_prepare has just verified the videos; do not hash them all a second time.
        rows = self._rows if self._rows is not None else self.prepare_videos()
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": split_rows}) for split, split_rows in rows.items()
        ]

    def _generate_examples(self, rows: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        for i, row in enumerate(rows):
            yield f"{row['video_id']}-{i}", row

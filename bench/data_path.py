"""Benchmark: the data path's clips/s per core, before and after, against what a GPU trains per second.

On-the-fly preprocessing (decode, sample, resize, crop, normalise: the video processor's whole call) of a git
revision you name (`--baseline REVISION`: its `video_processing_drl.py` and the modules it imports, taken from git and
loaded as a package of their own) and of this tree, alternating rounds, on generated clips of two kinds:

- realistic: 320x240, 30 fps, 15 s, H.264 with libx264's defaults (B-frames, a key frame at most every 250 frames), as
  MSR-VTT's clips are; a few different lavfi sources so that the content is not one picture;
- the authors' format: the same clips re-encoded as CLIP4Clip's `compress_video.py` does (3 fps, shortest side 224).

Each path runs through a torch `DataLoader` with `num_workers` 0 and 2. Per core = clips / CPU seconds (this process
and its reaped workers, so a busy machine counts only the work done, not the waiting); wall clips/s beside it. Where
`modeling_tvr.frame_cache` is importable, a warm frame cache is read the same way (stored uint8 frames, nothing
decoded) and its bytes per clip reported.

The GPU's appetite comes from the model's FLOPs: a ViT's forward pass per frame from its sizes (2 FLOPs per
multiply-add), training three times that, 12 frames per clip, at 20-40 % of an H100's dense bf16 peak; dividing by a
path's clips/s per core gives the cores one GPU needs. `--device cuda` also times the real training step (ViT-B/32 and
B/16 towers, batch 128, bf16 autocast, as `python -m bench.compile_step --paper`) and adds its clips/s.

    python -m bench.data_path --baseline REVISION
    python -m bench.data_path --baseline REVISION --device cuda
"""

import argparse
import importlib
import importlib.util
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import av
import torch
from torch.utils.data import DataLoader, Dataset

from bench.compile_step import config_and_batch, seconds_per_step
from bench.report import git_show
from modeling_tvr import DRLModel, DRLVideoProcessor
from tests.real_world_videos import ffmpeg

# lavfi sources for the realistic clips: synthetic test card, fractal zoom, cellular automata (fine moving detail).
SOURCES = (
    "testsrc2=size=320x240:rate=30",
    "mandelbrot=size=320x240:rate=30",
    "life=size=320x240:rate=30:seed={seed}:mold=10:ratio=0.3",
    "cellauto=size=320x240:rate=30:seed={seed}:rule=110",
)
# The modules the video processor imports at the baseline revision (all single-dot relative imports).
PROCESSOR_MODULES = ("video_processing_drl", "video_decoding", "frame_sampling", "frame_transforms")
# NVIDIA H100 SXM dense bf16 peak, FLOP/s, and the share of it a training step is taken to reach.
H100_BF16_PEAK = 989e12
UTILISATION = (0.2, 0.4)
FRAMES_PER_CLIP = 12


# --- clips ----------------------------------------------------------------------------------------------------------


def write_realistic_clips(folder: Path, count: int) -> list[Path]:
    """`count` clips of 320x240, 30 fps, 15 s, libx264 defaults, from the lavfi `SOURCES` in turn."""
    paths = []
    for number in range(count):
        source = SOURCES[number % len(SOURCES)].format(seed=number + 1)
        path = folder / f"realistic_{number:03d}.mp4"
        ffmpeg("-f", "lavfi", "-i", source, "-t", "15", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
        paths.append(path)
    return paths


def compress_like_clip4clip(source: Path, folder: Path) -> Path:
    """CLIP4Clip's `compress_video.py`: 3 fps, the shortest side 224 (the other even), video only, H.264 defaults."""
    path = folder / f"{source.stem}_3fps_224.mp4"
    scale = "scale='if(gt(a,1),trunc(oh*a/2)*2,224)':'if(gt(a,1),224,trunc(ow*a/2)*2)'"
    ffmpeg("-i", str(source), "-filter:v", scale, "-map", "0:v", "-r", "3", str(path))
    return path


# --- the two processors ---------------------------------------------------------------------------------------------


def baseline_processor_class(revision: str, folder: Path) -> type:
    """`DRLVideoProcessor` of `revision`, loaded as package `baseline_tvr` from the files git stores (importable by
    forked data-loader workers too)."""
    package = folder / "baseline_tvr"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in PROCESSOR_MODULES:
        (package / f"{name}.py").write_text(git_show(revision, f"modeling_tvr/{name}.py"))
    sys.path.insert(0, str(folder))
    return importlib.import_module("baseline_tvr.video_processing_drl").DRLVideoProcessor


class ProcessedClips(Dataset):
    """Item `i`: clip `paths[i]` ready for the device: the processor's `pixel_values_videos` `[F, 3, H, W]` float32,
    or with `uint8` its `processed_frames` (normalised on the device later)."""

    def __init__(self, paths: list[Path], processor, uint8: bool = False):
        self.paths, self.processor, self.uint8 = paths, processor, uint8

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        path = str(self.paths[position])
        if self.uint8:
            return self.processor.processed_frames(path)
        return self.processor(path)["pixel_values_videos"][0]


class Repeated(Dataset):
    """`dataset`'s items `times` over, so that an epoch outlasts the start of its data-loader workers."""

    def __init__(self, dataset: Dataset, times: int):
        self.dataset, self.times = dataset, times

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, position: int):
        return self.dataset[position % len(self.dataset)]


def keep_item(item):
    """The loaders' collate function: one clip per item, passed on as it is."""
    return item


# --- measuring --------------------------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children (data-loader workers, once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_epoch(dataset: Dataset, num_workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one pass over `dataset`, one clip per item, workers shut down at the end."""
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers, collate_fn=keep_item)
    cpu_before, start = cpu_seconds(), time.perf_counter()
    for _ in loader:  # once exhausted, the iterator shuts its workers down and joins them: their CPU time counts
        pass
    return time.perf_counter() - start, cpu_seconds() - cpu_before


def alternate(datasets: dict[str, Dataset], num_workers: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Median (wall clips/s, clips per CPU second) of each dataset over `rounds` rounds, each round reading every
    dataset once in turn so that all see the same machine load."""
    walls: dict[str, list[float]] = {name: [] for name in datasets}
    cpus: dict[str, list[float]] = {name: [] for name in datasets}
    for _ in range(rounds):
        for name, dataset in datasets.items():
            wall, cpu = run_epoch(dataset, num_workers)
            walls[name].append(len(dataset) / wall)
            cpus[name].append(len(dataset) / cpu)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in datasets}


# --- warm frame cache (optional: runs when modeling_tvr.frame_cache is importable) ----------------------------------


def frame_cache_reader(processor, paths: list[Path], folder: Path) -> tuple[Dataset, float] | None:
    """A dataset reading `paths` from a filled frame cache (uint8 frames and mask, nothing decoded) and the cache's
    bytes per clip on disk; None where the frame cache module is not there."""
    try:
        from modeling_tvr.frame_cache import CachedFramesDataset, FrameCache
    except ImportError:
        return None
    cache = FrameCache(folder / "frame_cache", processor)
    cache.fill([str(path) for path in paths], num_workers=0, show_progress=False)
    stored = sum(file.stat().st_size for file in cache.path.rglob("*") if file.is_file())
    return CachedFramesDataset(cache, [str(path) for path in paths]), stored / len(paths)


def paths_to_time(
    paths: list[Path], before, after, cache_folder: Path, passes: int
) -> tuple[dict[str, Dataset], float | None]:
    """The datasets timed on `paths` (each read `passes` times per epoch) and the frame cache's bytes per clip (None
    without a frame cache): before, after, after as uint8 frames, and a warm frame cache where there is one."""
    datasets = {"before": ProcessedClips(paths, before), "after": ProcessedClips(paths, after)}
    if hasattr(after, "processed_frames"):  # uint8 until the device (normalised there)
        datasets["after, uint8 frames"] = ProcessedClips(paths, after, uint8=True)
    datasets = {name: Repeated(dataset, passes) for name, dataset in datasets.items()}
    cached = frame_cache_reader(after, paths, cache_folder)
    if cached is None:
        return datasets, None
    # Stored frames read a thousand times quicker: more of them, so that worker start-up is not the figure.
    datasets["warm frame cache"] = Repeated(cached[0], 100 * passes)
    return datasets, cached[1]


# --- the GPU's appetite --------------------------------------------------------------------------------------------


def vit_forward_flops(image_size: int, patch_size: int, width: int = 768, layers: int = 12) -> float:
    """FLOPs of one ViT forward pass on one image (2 per multiply-add): patch embedding, then per layer the q/k/v and
    output projections (4 d^2 per token), the MLP (8 d^2 per token) and attention (2 N^2 d)."""
    tokens = (image_size // patch_size) ** 2 + 1
    patch_embedding = (tokens - 1) * 3 * patch_size**2 * width
    per_layer = tokens * 12 * width**2 + 2 * tokens**2 * width
    return 2.0 * (patch_embedding + layers * per_layer)


def gpu_clips_per_second(patch_size: int) -> tuple[float, float]:
    """Clips/s an H100 trains at 20 % and 40 % of its bf16 peak (training = 3 x forward, video tower only)."""
    per_clip = 3 * vit_forward_flops(224, patch_size) * FRAMES_PER_CLIP
    return tuple(share * H100_BF16_PEAK / per_clip for share in UTILISATION)


def measured_gpu_clips_per_second(device: str, patch_size: int, batch_size: int, steps: int) -> float:
    """Clips/s of the real training step (forward, loss, backward, optimizer) at ViT-B/`patch_size` sizes, bf16."""
    config, batch = config_and_batch(True, batch_size, device)
    config.vision_config.patch_size = patch_size
    torch.manual_seed(0)
    model = DRLModel(config).to(device).train()
    seconds = seconds_per_step(model, batch, steps, lambda: torch.autocast(device, dtype=torch.bfloat16))
    return batch_size / seconds


# --- the report -------------------------------------------------------------------------------------------------------


def cores_cell(gpu_rate: tuple[float, float], per_core: float) -> str:
    """Cores that keep one GPU fed, at the low and high end of its appetite."""
    low, high = gpu_rate[0] / per_core, gpu_rate[1] / per_core
    if high < 10:
        return f"{low:.2f}-{high:.2f}"
    return f"{low:,.0f}" if round(low) == round(high) else f"{low:,.0f}-{high:,.0f}"


def table(results: dict[tuple[str, str, int], tuple[float, float]], gpu: dict[str, tuple[float, float]]) -> list[str]:
    """Markdown rows: each (clips, path, workers) with wall clips/s, clips/s per core, x before, cores per GPU."""
    rows = [
        "| clips | path | workers | clips/s (wall) | clips/s per core | vs before | "
        + " | ".join(f"cores per GPU, {name}" for name in gpu)
        + " |",
        "| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in gpu) + " |",
    ]
    for (kind, path, workers), (wall, per_core) in results.items():
        before = results.get((kind, "before", workers))
        ratio = f"{per_core / before[1]:.2f}x" if before else ""
        cells = " | ".join(cores_cell(rate, per_core) for rate in gpu.values())
        rows.append(f"| {kind} | {path} | {workers} | {wall:.1f} | {per_core:.1f} | {ratio} | {cells} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare with (its video processor)")
    parser.add_argument("--clips", type=int, default=8, help="generated clips of each kind")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--passes", type=int, default=4, help="times each clip is read per epoch")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--device", default=None, help="time the real training step there (e.g. cuda)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core per process, as in each data-loader worker
    with tempfile.TemporaryDirectory(prefix="data_path_") as work:
        folder = Path(work)
        realistic = write_realistic_clips(folder, args.clips)
        kinds = {
            "320x240 30 fps 15 s": realistic,
            "3 fps 224 px (authors')": [compress_like_clip4clip(path, folder) for path in realistic],
        }
        Before = baseline_processor_class(args.baseline, folder)
        before, after = Before(), DRLVideoProcessor()
        results: dict[tuple[str, str, int], tuple[float, float]] = {}
        cache_bytes = {}
        for number, (kind, paths) in enumerate(kinds.items()):
            datasets, cache_bytes[kind] = paths_to_time(paths, before, after, folder / f"cache_{number}", args.passes)
            for dataset in datasets.values():
                run_epoch(dataset, 0)  # warm-up: page cache, imports, lookup tables
            for workers in args.workers:
                for name, rates in alternate(datasets, workers, args.rounds).items():
                    results[(kind, name, workers)] = rates
                    print(f"{kind} | {name} | {workers} workers | {rates[0]:.1f} clips/s | {rates[1]:.1f} per core")
    gpu = {f"ViT-B/{patch} at 20-40 % MFU": gpu_clips_per_second(patch) for patch in (32, 16)}
    if args.device:
        for patch in (32, 16):
            rate = measured_gpu_clips_per_second(args.device, patch, args.batch_size, args.steps)
            gpu[f"ViT-B/{patch} measured on {args.device}"] = (rate, rate)
    appetite = "; ".join(f"{name}: {low:,.0f}-{high:,.0f} clips/s" for name, (low, high) in gpu.items())
    text = [
        f"{args.clips} clips of each kind, each read {args.passes} times per epoch, {args.rounds} alternating rounds "
        "(medians), one torch thread per process; "
        f"before = the video processor at `{args.baseline}`, after = this tree; {platform.machine()}, PyAV "
        f"{av.__version__}, torch {torch.__version__}, {date.today().isoformat()}. Command: "
        f"`python -m bench.data_path --baseline {args.baseline}{f' --device {args.device}' if args.device else ''}`.",
        "",
        *table(results, gpu),
        "",
        f"Per core = clips per CPU second of the loading processes. A GPU's appetite (training = 3 x the forward "
        f"FLOPs, {FRAMES_PER_CLIP} frames of 224 px; ViT-B/32 forward {vit_forward_flops(224, 32) / 1e9:.1f} GFLOPs, "
        f"B/16 {vit_forward_flops(224, 16) / 1e9:.1f} GFLOPs per frame; H100 bf16 peak {H100_BF16_PEAK / 1e12:.0f} "
        f"TFLOP/s): {appetite}.",
    ]
    stored = {kind: size for kind, size in cache_bytes.items() if size is not None}
    if stored:
        text.append(
            "Frame cache on disk: " + ", ".join(f"{kind} {size / 1e6:.2f} MB per clip" for kind, size in stored.items())
        )
    print("\n".join(text))


if __name__ == "__main__":
    main()

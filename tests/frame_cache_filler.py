"""Fills a frame cache from a separate process, for tests/test_frame_cache.py: two of these at once, or one that
stalls in the middle of committing its Nth shard (after the frames are written, before their records) so that the test
can kill it there with SIGKILL, as a scheduler or the out-of-memory killer would.

    python tests/frame_cache_filler.py CACHE_DIR CLIPS_JSON [STALL_AT_COMMIT READY_FILE]
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_tvr import DRLVideoProcessor  # noqa: E402
from modeling_tvr.frame_cache import FrameCache, storage  # noqa: E402

# Every clip gets its own shard, so a fill commits once per clip.
SHARD_BYTES = 1


def processor(**overrides) -> DRLVideoProcessor:
    """The tests' video processor: 32 px frames, at most 6 sampled at 4 per second."""
    options = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}, "max_frames": 6}
    return DRLVideoProcessor(**{**options, "video_framerate": 4, **overrides})


def stall_at_commit(number: int, ready: Path) -> None:
    """The `number`th shard's record file is never written: the process says so in `ready` and sleeps."""
    write = storage.write_json_atomically
    commits = 0

    def stalling(target: Path, value: dict) -> None:
        nonlocal commits
        if target.parent.name == storage.SHARD_FOLDER:
            commits += 1
            if commits == number:
                ready.write_text("stalled")
                time.sleep(600)
        write(target, value)

    storage.write_json_atomically = stalling


if __name__ == "__main__":
    folder, clips_file = sys.argv[1:3]
    if len(sys.argv) > 3:
        stall_at_commit(int(sys.argv[3]), Path(sys.argv[4]))
    clips = json.loads(Path(clips_file).read_text())  # paths and [path, start, end] lists
    report = FrameCache(folder, processor(), shard_bytes=SHARD_BYTES).fill(clips, num_workers=0, show_progress=False)
    print(json.dumps({"filled": report.filled, "reused": report.reused, "failed": len(report.failed)}))

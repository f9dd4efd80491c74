"""Benchmark: deciding which indexed files changed, before (size + mtime) and after (+ ctime and inode, then the
content hash when any differs), against hashing every file's content each time.

A refresh of an unchanged folder runs `FileFingerprint.is_current` on every file. The earlier rule trusted size and
modification time alone, so a file replaced by one of the same size and time kept stale features; the new rule adds
the change time and inode, which a replacement cannot keep, and reads a file only when one of them moved.

    python bench/change_detection.py --baseline REVISION --write
"""

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from report import git_show, write_section  # noqa: E402
from timing import best_time  # noqa: E402

from modeling_tvr.search.fingerprint import FileFingerprint, content_hash  # noqa: E402


def baseline_fingerprint(revision: str, folder: Path):
    # Its path before the search code moved into modeling_tvr/search/ as well, for baselines older than that.
    source = git_show(revision, "modeling_tvr/search/fingerprint.py", "modeling_tvr/file_fingerprint.py")
    (folder / "baseline_fingerprint.py").write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_fingerprint", folder / "baseline_fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FileFingerprint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision with the size + mtime rule")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--megabytes", type=int, default=4, help="size of each file")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        paths = []
        for i in range(args.files):
            path = work / f"video{i:05d}.mp4"
            path.write_bytes(os.urandom(args.megabytes * 1024**2))
            paths.append(path)
        Before = baseline_fingerprint(args.baseline, work)
        before = [Before.of(path) for path in paths]
        after = [FileFingerprint.of(path) for path in paths]
        seconds = {
            "before: size + mtime": best_time(lambda: [f.is_current() for f in before], args.repeat),
            "after: size + mtime + ctime + inode": best_time(lambda: [f.is_current() for f in after], args.repeat),
            "content hash of every file": best_time(lambda: [content_hash(p) for p in paths], 1),
        }
    rows = [
        f"| {name} | {value * 1e3:.1f} | {value / seconds['before: size + mtime']:.1f}x |"
        for name, value in seconds.items()
    ]
    text = "\n".join(
        [
            f"{args.files} unchanged files of {args.megabytes} MB (page cache warm), best of {args.repeat}; before = "
            f"the fingerprint module at `{args.baseline}`; {platform.machine()}, "
            f"{date.today().isoformat()}. Command: `python bench/change_detection.py --baseline {args.baseline} "
            "--write`.",
            "",
            "| check of every file | ms | vs before |",
            "| --- | --- | --- |",
            *rows,
            "",
            "A replaced file (same size and time) changes inode or change time and is then hashed: the content digest "
            "decides, at the cost of reading that file only. Building an index hashes every file once, as before.",
        ]
    )
    print(text)
    if args.write:
        write_section("change_detection", "Index change detection", text)


if __name__ == "__main__":
    main()

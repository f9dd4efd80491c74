"""Benchmark: deciding which indexed files changed, before (size + mtime) and after (+ ctime and inode, then the
content hash when any differs), against hashing every file's content each time.

A refresh of an unchanged folder runs `FileFingerprint.is_current` on every file. "Before" is the fingerprint module
at the git revision you name with `--baseline`: pick one whose rule trusts size and modification time alone, under
which a file replaced by one of the same size and time keeps stale features. This tree's rule adds the change time
and inode, which a replacement cannot keep, and reads a file only when one of them moved.

    python -m bench.change_detection --baseline REVISION --write
"""

import argparse
import importlib.util
import os
import platform
import tempfile
from datetime import date
from pathlib import Path

from bench.report import git_show, write_section
from bench.timing import best_time
from modeling_tvr.search.fingerprint import FileFingerprint, content_hash


def baseline_fingerprint(revision: str, folder: Path):
    # The module is modeling_tvr/search/fingerprint.py, or modeling_tvr/file_fingerprint.py at older revisions.
    source = git_show(revision, "modeling_tvr/search/fingerprint.py", "modeling_tvr/file_fingerprint.py")
    (folder / "baseline_fingerprint.py").write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_fingerprint", folder / "baseline_fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FileFingerprint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare with (its size + mtime rule)")
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
            f"{date.today().isoformat()}. Command: `python -m bench.change_detection --baseline {args.baseline} "
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

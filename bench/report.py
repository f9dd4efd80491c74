"""Writes one benchmark's section of BENCHMARKS.md, replacing that section's previous figures."""

import re
import subprocess
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nFigures written by the scripts in `bench/`; each section names its command, machine and date.\n"
)


def write_section(key: str, title: str, body: str) -> None:
    """Replaces (or appends) the section between `<!-- bench:key -->` markers."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    section = f"<!-- bench:{key} -->\n## {title}\n\n{body}\n<!-- /bench:{key} -->"
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
    BENCHMARKS_MD.write_text(text)


def git_show(revision: str, *paths: str) -> str:
    """The text of the first of `paths` (relative to the repository root) that exists at git `revision`, the baseline
    a benchmark's user names to compare with (several paths: a file whose path differs between revisions)."""
    root = BENCHMARKS_MD.parent
    for path in paths:
        result = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=root, capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout
    raise FileNotFoundError(f"None of {', '.join(paths)} exists at revision {revision}.")

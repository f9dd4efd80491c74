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


def git_show(revision: str, path: str) -> str:
    """The text of `path` (relative to the repository root) at git `revision`, for comparing with an earlier version."""
    root = BENCHMARKS_MD.parent
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=root, capture_output=True, text=True, check=True
    ).stdout

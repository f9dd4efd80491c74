"""Benchmarks of modeling_tvr, one script per measurement, each run from the repository root as a module (`python -m
bench.similarity`, `python -m bench.search --write`, ...; `--help` lists a script's options). With `--write` a script
records its figures as its own section of BENCHMARKS.md through `bench.report`; the clocks and memory readings come
from `bench.timing`. Scripts with `--baseline REVISION` compare this tree against the git revision you name."""

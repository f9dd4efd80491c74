"""A stand-in for the Hub's dataset repos (tests run offline), behind the `hub` fixture of conftest.py."""

from pathlib import Path

import pytest


def stand_in_hub(monkeypatch: pytest.MonkeyPatch, folder: Path) -> dict[str, Path]:
    """Makes a push write the rows as `datasets`' push_to_hub lays them out (data/<split>-*.parquet) under
    `folder`/<repo>, and `datasets.load_dataset(repo)` read that folder back.

    Args:
        monkeypatch (`pytest.MonkeyPatch`): Undoes the stand-in after the test.
        folder (`Path`): Where the pushed repos are written.

    Returns:
        `dict[str, Path]`: each pushed repo id's folder; a test may add repos of its own.
    """
    import datasets
    from huggingface_hub import DatasetCard
    from huggingface_hub.errors import EntryNotFoundError

    import dataset_builders.publish as publish

    repos: dict[str, Path] = {}
    real_load_dataset = datasets.load_dataset

    def push_rows(self, repo_id, **kwargs):
        repos[repo_id] = folder / repo_id
        for split, rows in self.items():
            rows.to_parquet(repos[repo_id] / "data" / f"{split}-00000-of-00001.parquet")

    def no_readme(*args, **kwargs):
        raise EntryNotFoundError("README.md not found")

    def load_dataset(path, *args, **kwargs):
        return (
            real_load_dataset(str(repos[path]), *args, **kwargs)
            if path in repos
            else real_load_dataset(path, *args, **kwargs)
        )

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", push_rows)
    monkeypatch.setattr(publish, "hf_hub_download", no_readme)
    monkeypatch.setattr(DatasetCard, "push_to_hub", lambda self, repo_id, **kwargs: None)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return repos

"""The search command's user errors: one line naming the thing and the fix (or the right result), never a traceback."""

import io
import os
import shutil
import sys
from pathlib import Path

import pytest

from modeling_tvr.search import cli
from modeling_tvr.search.cli import main as search_main

from .helpers import tiny_model_for, tiny_processor
from .index_helpers import write_clip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A saved tiny model and processor (6 frames a video)."""
    folder = tmp_path_factory.mktemp("search_cli")
    processor = tiny_processor(folder)
    tiny_model_for(processor.tokenizer, seed=6).save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("search_cli_clips")
    return [write_clip(folder / f"clip{i}.mp4", seed=50 + i, seconds=1 + i % 2) for i in range(3)]


@pytest.fixture
def videos(clips, tmp_path) -> Path:
    """A fresh folder of three videos (so that each test indexes its own)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for clip in clips:
        shutil.copy(clip, folder / clip.name)
    return folder


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_top_k_below_one_is_a_usage_error_naming_the_value(model_dir, videos, value, capsys):
    with pytest.raises(SystemExit) as raised:
        search_main(["--model", str(model_dir), "--videos", str(videos), "--top-k", value, "a query"])
    err = capsys.readouterr().err
    assert raised.value.code == 2 and err.startswith("usage:")
    assert f"argument --top-k: {value!r} is not a whole number of at least 1" in err


@pytest.fixture
def online(monkeypatch):
    """The Hub reachable as far as the checks know, and any attempt to load from it a test failure."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def no_loading(name, device=None):
        raise AssertionError(f"{name} was looked up on the Hub")

    monkeypatch.setattr(cli, "load_model_and_processor", no_loading)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("outputs/drl-tyo", "did you mean outputs/drl-toy?"), ("./drl-tyo", ""), ("outputs/drl-toy/extra", "")],
)
def test_a_misspelled_local_model_path_is_named_at_once_not_looked_up_on_the_hub(
    online, tmp_path, videos, monkeypatch, capsys, name, suggestion
):
    (tmp_path / "outputs" / "drl-toy").mkdir(parents=True)
    (tmp_path / "outputs" / "drl-toy" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert search_main(["--model", name, "--videos", str(videos), "q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --model {name}: no folder {name} here") and err.count("\n") == 1
    assert suggestion in err


def test_an_absolute_or_home_model_path_that_does_not_exist_is_named(online, tmp_path, videos, capsys):
    for name in (str(tmp_path / "nowhere"), "~/no-such-model-folder-here"):
        assert search_main(["--model", name, "--videos", str(videos), "q"]) == 1
        assert capsys.readouterr().err == f"error: --model {name}: no folder {name}.\n"


def test_a_hub_id_whose_owner_is_no_local_folder_still_goes_to_the_hub(online, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.model_location_error("someone/drl-model") is None
    (tmp_path / "someone").mkdir()  # now it reads as a local path, and says how to reach the Hub instead
    assert "for the Hub repository someone/drl-model, run from another folder" in cli.model_location_error(
        "someone/drl-model"
    )


def test_a_new_max_frames_gets_its_own_index_instead_of_a_mismatch(model_dir, videos, tmp_path, capsys):
    assert search_main(["--model", str(model_dir), "--videos", str(videos), "a query"]) == 0
    other = tmp_path / "model-4-frames"
    shutil.copytree(model_dir, other)
    tiny_processor(tmp_path, max_frames=4).save_pretrained(other)
    capsys.readouterr()
    assert search_main(["--model", str(other), "--videos", str(videos), "a query"]) == 0
    assert "3 video(s) indexed" in capsys.readouterr().err
    assert len(list((videos / ".drl-index").iterdir())) == 2


def strict_utf8_stdout() -> io.TextIOWrapper:
    """What `PYTHONIOENCODING=utf-8` gives: UTF-8 that raises on lone surrogates (undecodable file name bytes)."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)


@pytest.mark.skipif(sys.platform != "linux", reason="file names of arbitrary bytes are a Linux (POSIX) matter")
def test_file_names_with_control_characters_or_undecodable_bytes_are_printed_escaped(
    model_dir, videos, monkeypatch, capsys
):
    (videos / "clip0.mp4").rename(videos / "two\nlines.mp4")
    (videos / "clip1.mp4").rename(os.fsdecode(bytes(videos) + b"/\xff.mp4"))
    stdout = strict_utf8_stdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert search_main(["--model", str(model_dir), "--videos", str(videos), "--top-k", "3", "a query"]) == 0
    lines = stdout.buffer.getvalue().decode().splitlines()
    assert lines[1] == "a query" and len(lines) == 5  # blank, the query, three hits: one line each
    names = sorted(line.split(maxsplit=2)[2] for line in lines[2:])  # "   1. +0.1234  name"
    assert names == ['"\\xff.mp4"', '"two\\nlines.mp4"', "clip2.mp4"]


def test_query_errors_name_the_query(model_dir, videos, capsys):
    assert search_main(["--model", str(model_dir), "--videos", str(videos), "fine", "   "]) == 1
    expected = 'error: query 2 ("   ") holds only whitespace; every query needs at least one word.\n'
    assert capsys.readouterr().err == expected


def test_an_undecodable_video_is_reported_in_one_line_and_the_rest_searched(model_dir, videos, capsys, caplog):
    (videos / "broken.mp4").write_bytes(b"not a video")
    assert search_main(["--model", str(model_dir), "--videos", str(videos), "a query"]) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 4  # the query and the three good videos
    # What the terminal shows: the command's own lines and the library's log lines (which pytest captures apart).
    failures = [line for line in (err + caplog.text).splitlines() if "broken.mp4" in line]
    assert len(failures) == 1 and failures[0].startswith("not indexed: broken.mp4: ")

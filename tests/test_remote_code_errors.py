"""A saved folder's copy of the code (loaded with `trust_remote_code=True`, as the README loads it) raises the
package's own error classes, so `except modeling_tvr.VideoReadError` and the search index see its failures."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from .helpers import tiny_model_for, tiny_processor
from .index_helpers import write_clip


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A folder as train.py writes it (model and processor together), a good clip and a text file named `.mp4`."""
    folder = tmp_path_factory.mktemp("remote")
    processor = tiny_processor(folder)
    tiny_model_for(processor.tokenizer, seed=1).save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    good = write_clip(folder / "good.mp4", seed=0)
    broken = folder / "notes.mp4"
    broken.write_text("meeting notes, not a video\n")
    return folder, str(good), str(broken)


# What a user writes after the README: nothing imports modeling_tvr before the folder's code is loaded, so transformers
# imports the folder's copy (`transformers_modules.*`); only then the package, to catch its error class.
USER_SCRIPT = """
import json, sys
from transformers import AutoProcessor, pipeline
folder, good, broken = sys.argv[1:4]
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
pipe = pipeline("text-video-retrieval", model=folder, trust_remote_code=True)
import modeling_tvr
from modeling_tvr.search.index import VideoIndex
caught = {"modules": [type(processor).__module__, type(pipe).__module__]}
try:
    processor(videos=[good, broken])
except modeling_tvr.VideoReadError as error:  # `except` matches by class identity: the point of this test
    caught["processor"] = [error.source, error.position]
try:
    pipe("a red circle", videos=[good, broken])
except modeling_tvr.VideoReadError as error:
    caught["pipeline"] = [error.source, error.position, error.where]
index = VideoIndex.build(pipe.model, processor, [good, broken], show_progress=False)
caught["index"] = [index.paths, sorted(index.failed)]
print(json.dumps(caught))
"""


def run_python(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_errors_of_the_remote_code_processor_and_pipeline_are_the_packages_video_read_error(saved, tmp_path):
    folder, good, broken = saved
    result = run_python(tmp_path, "-c", USER_SCRIPT, str(folder / "model"), good, broken)
    assert result.returncode == 0, result.stderr[-3000:]
    caught = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(module.startswith("transformers_modules") for module in caught["modules"]), caught["modules"]
    assert caught["processor"] == [broken, 1]
    assert caught["pipeline"] == [broken, 1, "the input"]
    assert caught["index"] == [[good], [broken]]  # recorded as failed, the rest indexed


@pytest.mark.slow
def test_the_search_command_searches_the_rest_when_one_file_cannot_be_decoded(saved, tmp_path):
    folder, good, broken = saved
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(good, videos / "good.mp4")
    shutil.copy(broken, videos / "notes.mp4")
    result = run_python(
        tmp_path, "-m", "modeling_tvr.search", "--model", str(folder / "model"), "--videos", str(videos), "a red"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "good.mp4" in result.stdout and "notes.mp4" not in result.stdout
    assert "notes.mp4" in result.stderr

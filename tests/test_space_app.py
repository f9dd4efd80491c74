"""The Space demo: ranking and word-weight logic, and the gradio app answering a query headless."""

import importlib.util
import socket
from pathlib import Path

import pytest
from PIL import Image

from .helpers import tiny_model_for, tiny_processor
from .videos import write_video

APP_PATH = Path(__file__).resolve().parents[1] / "hub_scripts" / "space" / "app.py"


def load_app_module():
    """The Space's app.py is a script folder, not a package: load it by path."""
    spec = importlib.util.spec_from_file_location("space_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def app_module():
    return load_app_module()


@pytest.fixture(scope="module")
def demo(app_module, tmp_path_factory):
    folder = tmp_path_factory.mktemp("space")
    processor = tiny_processor(folder)
    model = tiny_model_for(processor.tokenizer, seed=2)
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    return app_module.DRLDemo(str(folder / "model"), example_dir=folder / "examples", device=-1)


def test_example_clips_are_generated(demo):
    assert [path.name for path in demo.examples] == [
        "red_flashing.mp4",
        "ball_on_blue.mp4",
        "green_grass.mp4",
        "sunset.mp4",
    ]
    assert all(path.stat().st_size > 0 for path in demo.examples)


def test_rank_videos_ranks_the_examples_by_the_pipeline(demo):
    rows = demo.rank_videos("a red light flashing")
    expected = demo.pipeline("a red light flashing", videos=[str(path) for path in demo.examples])
    assert [row[0] for row in rows] == [1, 2, 3, 4]
    assert [row[1] for row in rows] == [Path(item["video"]).name for item in expected]
    assert [row[2] for row in rows] == sorted((row[2] for row in rows), reverse=True)


def test_rank_videos_takes_uploaded_videos(demo, tmp_path):
    uploads = [str(write_video(tmp_path / f"upload_{i}.mp4", 1.0 + i, width=48 + 16 * i)) for i in range(2)]
    rows = demo.rank_videos("a dog", uploads)
    assert sorted(row[1] for row in rows) == ["upload_0.mp4", "upload_1.mp4"]


def test_word_weights_join_bpe_pieces_and_sum_to_one(demo):
    words = demo.word_weights("a dog's running")
    assert [word for word, _ in words] == ["[SOT]", "a", "dog", "'s", "running", "[EOT]"]
    assert sum(weight for _, weight in words) == pytest.approx(1.0, abs=1e-5)
    assert all(weight > 0 for _, weight in words)


def test_token_weight_image_is_a_bar_chart_with_a_row_per_word(demo):
    short, long = demo.token_weight_image("a dog"), demo.token_weight_image("a dog runs on the beach at night")
    assert isinstance(short, Image.Image) and short.mode == "RGB"
    assert long.height > short.height


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.filterwarnings("ignore:::gradio")  # gradio's own pandas deprecation warnings
def test_the_demo_starts_and_answers_one_query_headless(app_module, demo, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    pytest.importorskip("gradio")
    from gradio_client import Client

    app = app_module.build_app(demo)
    port = free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(demo.example_dir)],
    )
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        table, best, chart = client.predict("a red light flashing", None, api_name="/search")
    finally:
        app.close()
    rows = table["data"]
    assert [row[0] for row in rows] == [1, 2, 3, 4]
    assert [row[1] for row in rows] == [row[1] for row in demo.rank_videos("a red light flashing")]
    assert Path(best["video"] if isinstance(best, dict) else best).name == rows[0][1]
    assert Image.open(chart).size[0] > 0

"""The Space demo: ranking and word-weight logic, and the gradio app answering a query headless."""

import importlib.util
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeling_tvr import DRLProcessor, DRLVideoProcessor
from modeling_tvr.training.bpe_vocabulary import train_clip_bpe

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


def test_example_clips_are_generated(demo, app_module):
    assert [path.name for path in demo.examples] == [f"{name}.mp4" for name in app_module.EXAMPLE_CLIPS]
    from modeling_tvr import read_video_frames

    for path in demo.examples:  # 3 s at 10 fps, 160 x 96, decodable by the package's own reader
        video = read_video_frames(str(path), max_frames=100, video_framerate=10)
        assert video.frames.shape == (30, 96, 160, 3), path.name


def test_example_queries_fall_back_to_all_when_the_vocabulary_knows_none(demo, app_module):
    # The tiny test tokenizer splits every example query into pieces: then all are offered rather than none.
    tokenize = demo.processor.tokenizer.tokenize
    assert all(len(tokenize(query)) > len(query.split()) for query in app_module.EXAMPLE_QUERIES)
    assert demo.example_queries == app_module.EXAMPLE_QUERIES


def test_toy_model_gets_toy_queries(app_module, tmp_path):
    # A vocabulary learned from toy-benchmark captions, as `python train.py` learns it.
    captions = ["a red circle moves to the left", "a blue square moves up", "a green triangle slides down"] * 20
    tokenizer = train_clip_bpe(captions, tmp_path / "bpe.txt.gz", num_merges=200)
    video_processor = DRLVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = DRLProcessor(video_processor=video_processor, tokenizer=tokenizer)
    model = tiny_model_for(tokenizer, seed=1)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    demo = app_module.DRLDemo(str(tmp_path / "model"), device=-1)
    try:
        assert demo.example_queries == ["a red circle moves to the left", "a blue square moves up"]
        folder = demo.example_dir
        assert folder.is_dir()
    finally:
        demo.close()
    assert not folder.exists()  # the generated example clips do not outlive the demo


def test_rank_videos_ranks_the_examples_by_the_pipeline(demo):
    rows = demo.rank_videos("a red light flashing")
    expected = demo.pipeline("a red light flashing", videos=[str(path) for path in demo.examples])
    assert [row[0] for row in rows] == list(range(1, len(demo.examples) + 1))
    assert [row[1] for row in rows] == [Path(item["video"]).name for item in expected]
    assert [row[2] for row in rows] == sorted((row[2] for row in rows), reverse=True)


def test_rank_videos_takes_uploaded_videos(demo, tmp_path):
    uploads = [str(write_video(tmp_path / f"upload_{i}.mp4", 1.0 + i, width=48 + 16 * i)) for i in range(2)]
    rows = demo.rank_videos("a dog", uploads)
    assert sorted(row[1] for row in rows) == ["upload_0.mp4", "upload_1.mp4"]


def test_token_weights_are_shown_per_bpe_piece_and_sum_to_one(demo):
    pieces = demo.token_piece_weights("a dog's running")
    tokens = demo.processor.tokenizer.tokenize("a dog's running")
    labels = [label for label, _ in pieces]
    assert labels[0] == "[SOT]" and labels[-1] == "[EOT]" and len(labels) == len(tokens) + 2
    # A split word shows as its pieces: every piece but a word's last one ends with "-".
    assert [label.endswith("-") for label in labels[1:-1]] == [not token.endswith("</w>") for token in tokens]
    assert "".join(label.rstrip("-") for label in labels[1:-1]) == "adog'srunning"
    assert sum(weight for _, weight in pieces) == pytest.approx(1.0, abs=1e-5)
    assert all(weight > 0 for _, weight in pieces)


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_gets_a_friendly_message(demo, app_module, query):
    with pytest.raises(ValueError, match="Type a query first"):
        demo.search(query)


def test_token_weight_image_is_a_bar_chart_with_a_row_per_word(demo):
    short, long = demo.token_weight_image("a dog"), demo.token_weight_image("a dog runs on the beach at night")
    assert isinstance(short, Image.Image) and short.mode == "RGB"
    assert long.height > short.height


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
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
    assert [row[0] for row in rows] == list(range(1, len(demo.examples) + 1))
    assert [row[1] for row in rows] == [row[1] for row in demo.rank_videos("a red light flashing")]
    assert Path(best["video"] if isinstance(best, dict) else best).name == rows[0][1]
    # The chart the app sends is the query's token-weight chart: gradio re-encodes it lossily, so the bars (each
    # row's length in the word and special-token colours) are compared rather than every pixel.
    expected = np.asarray(demo.token_weight_image("a red light flashing").convert("RGB"), dtype=np.int16)
    sent = np.asarray(Image.open(chart).convert("RGB"), dtype=np.int16)
    assert sent.shape == expected.shape

    def bar_lengths(pixels):
        return sum(np.all(np.abs(pixels - colour) < 40, axis=-1).sum(1) for colour in ((66, 133, 244), (150,) * 3))

    drawn, received = bar_lengths(expected), bar_lengths(sent)
    # Rows inside a bar (the re-encoding blurs a bar's top and bottom rows).
    inside = np.flatnonzero((drawn[1:-1] > 0) & (drawn[:-2] == drawn[1:-1]) & (drawn[2:] == drawn[1:-1])) + 1
    assert len(inside) > 20 and drawn[inside].max() > 100  # the chart has bars to compare
    assert np.abs(received[inside] - drawn[inside]).max() <= 3


def test_the_space_card_names_every_example_clip_the_app_writes(app_module):
    card = (APP_PATH.parent / "README.md").read_text()
    numbers = {4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
    assert f"the {numbers[len(app_module.EXAMPLE_CLIPS)]} generated example clips" in card
    described = card.split("example clips:", 1)[1].split(")", 1)[0]
    assert described.count(",") + 1 == len(app_module.EXAMPLE_CLIPS)

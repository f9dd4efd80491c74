"""The Inference Endpoints handler: both payload forms with base64 videos, and a clear error for each bad payload."""

import base64
import os
import tempfile

import pytest
import torch
from transformers import pipeline

from hub_scripts.handler import EndpointHandler, parse_request, sniff_suffix

from .helpers import tiny_model_for, tiny_processor
from .videos import write_video

TEXTS = ["a dog runs on the beach", "a red car", "people dance at night"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("handler")
    processor = tiny_processor(folder)
    model = tiny_model_for(processor.tokenizer, seed=2)
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    videos = [
        write_video(folder / "a.mp4", 2.0, width=64),
        write_video(folder / "b.mp4", 1.0, width=48, height=64),
        write_video(folder / "c.mp4", 3.0, width=80, fps=10),
    ]
    encoded = [base64.b64encode(path.read_bytes()).decode() for path in videos]
    local = pipeline("text-video-retrieval", model=model, processor=processor)
    return EndpointHandler(str(folder / "model")), local, [str(path) for path in videos], encoded


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """Points tempfile at an empty folder, to check that the handler leaves nothing behind."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_video_and_texts_rank_the_texts(setup, temp_root):
    handler, local, paths, encoded = setup
    result = handler({"inputs": {"video": encoded[0], "texts": TEXTS}})
    expected = local(texts=TEXTS, videos=paths[0])
    assert [set(item) for item in result] == [{"text", "score"}] * len(TEXTS)
    assert [item["text"] for item in result] == [item["text"] for item in expected]
    torch.testing.assert_close([item["score"] for item in result], [item["score"] for item in expected])
    assert [item["score"] for item in result] == sorted((item["score"] for item in result), reverse=True)
    assert os.listdir(temp_root) == []


def test_text_and_videos_rank_the_videos_by_index(setup, temp_root):
    handler, local, paths, encoded = setup
    result = handler({"inputs": {"text": TEXTS[0], "videos": encoded}})
    expected = local(TEXTS[0], videos=paths)
    assert [set(item) for item in result] == [{"index", "score"}] * len(paths)
    assert [item["index"] for item in result] == [item["index"] for item in expected]
    torch.testing.assert_close([item["score"] for item in result], [item["score"] for item in expected])
    top = handler({"inputs": {"text": TEXTS[0], "videos": encoded}, "parameters": {"top_k": 2}})
    assert top == result[:2]
    assert os.listdir(temp_root) == []


def test_a_data_url_prefix_is_accepted(setup):
    handler, _, _, encoded = setup
    plain = handler({"inputs": {"video": encoded[1], "texts": TEXTS[:2]}})
    assert handler({"inputs": {"video": "data:video/mp4;base64," + encoded[1], "texts": TEXTS[:2]}}) == plain


def test_an_undecodable_video_is_named_by_its_index_and_temp_files_go(setup, temp_root):
    handler, _, _, encoded = setup
    garbage = base64.b64encode(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50).decode()
    with pytest.raises(ValueError, match=r"^videos\[1\] could not be decoded as a video"):
        handler({"inputs": {"text": "a dog", "videos": [encoded[0], garbage]}})
    with pytest.raises(ValueError, match=r"^video could not be decoded as a video"):
        handler({"inputs": {"video": garbage, "texts": ["a dog"]}})
    assert os.listdir(temp_root) == []


def test_error_messages_never_show_the_servers_temporary_paths(setup, temp_root):
    handler, _, _, encoded = setup
    garbage = base64.b64encode(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50).decode()
    for payload in (
        {"inputs": {"text": "a dog", "videos": [encoded[0], garbage]}},
        {"inputs": {"video": garbage, "texts": ["a dog"]}},
    ):
        with pytest.raises(ValueError) as error:
            handler(payload)
        assert str(temp_root) not in str(error.value) and "drl-endpoint-" not in str(error.value)


@pytest.mark.parametrize(
    ("inputs", "parameters", "message"),
    [
        ({"texts": ["a dog", "\x00\x1b"]}, {}, r"texts\[1\] holds only control or invisible characters"),
        ({"texts": ["\u200b"]}, {}, r"texts\[0\] holds only control or invisible characters"),
        ({"texts": ["a", ""]}, {}, r"texts\[1\] is empty"),
        ({"texts": ["a", " "]}, {}, r"texts\[1\] holds only whitespace"),
        ({"text": " "}, {}, "The text holds only whitespace"),
        ({"text": ""}, {}, "The text is empty"),
        ({"text": "a"}, {"top_k": 0}, "top_k must be a positive integer"),
        ({"text": "a"}, {"top_k": "3"}, "top_k must be a positive integer"),
        ({"texts": ["a"]}, {"top_k": True}, "top_k must be a positive integer"),
    ],
)
def test_texts_and_top_k_are_checked_by_the_pipeline_and_refused_clearly(setup, temp_root, inputs, parameters, message):
    """The handler checks the payload's shape; the text rule and top_k's range are the pipeline's, reached from here."""
    handler, _, _, encoded = setup
    media = {"video": encoded[0]} if "texts" in inputs else {"videos": encoded[:2]}
    with pytest.raises(ValueError, match=message):
        handler({"inputs": {**inputs, **media}, "parameters": parameters})
    assert os.listdir(temp_root) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "no 'inputs'"),
        ({}, "no 'inputs'"),
        ({"input": {}}, "no 'inputs'"),
        ({"inputs": "a dog"}, "'inputs' must be an object"),
        ({"inputs": {"texts": ["a"]}}, "neither 'video' nor 'videos'"),
        ({"inputs": {"video": "AAAA", "videos": ["AAAA"], "texts": ["a"]}}, "both 'video' and 'videos'"),
        ({"inputs": {"video": "AAAA"}}, "needs 'texts'"),
        ({"inputs": {"video": "AAAA", "texts": []}}, "'texts' must be a non-empty list"),
        ({"inputs": {"video": "AAAA", "texts": "a dog"}}, "'texts' must be a non-empty list"),
        ({"inputs": {"video": "AAAA", "texts": ["a", 3]}}, r"texts\[1\] must be a string"),
        ({"inputs": {"video": "not base64!", "texts": ["a"]}}, "video is not valid base64"),
        ({"inputs": {"video": 12, "texts": ["a"]}}, "video must be a base64 string"),
        ({"inputs": {"video": "", "texts": ["a"]}}, "video is empty"),
        ({"inputs": {"videos": ["AAAA"]}}, "needs 'text'"),
        ({"inputs": {"videos": ["AAAA"], "text": 3}}, "needs 'text'"),
        ({"inputs": {"videos": [], "text": "a"}}, "'videos' must be a non-empty list"),
        ({"inputs": {"videos": "AAAA", "text": "a"}}, "'videos' must be a non-empty list"),
        ({"inputs": {"videos": ["AAAA", "A?==", "AAAA"], "text": "a"}}, r"videos\[1\] is not valid base64"),
        ({"inputs": {"videos": ["AAAA"], "text": "a"}, "parameters": {"k": 3}}, "Unknown parameters"),
        ({"inputs": {"videos": ["AAAA"], "text": "a"}, "parameters": [3]}, "'parameters' must be an object"),
    ],
)
def test_invalid_payloads_say_what_is_wrong(payload, message):
    with pytest.raises(ValueError, match=message):
        parse_request(payload)


def test_the_handler_rejects_invalid_payloads_before_touching_the_model(setup):
    handler = setup[0]
    with pytest.raises(ValueError, match="no 'inputs'"):
        handler({"videos": []})


def test_suffix_is_sniffed_from_the_bytes(setup):
    paths = setup[2]
    with open(paths[0], "rb") as file:
        assert sniff_suffix(file.read(64)) == ".mp4"
    assert sniff_suffix(b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x00\x00\x00\x1f\x42\x86\x81\x01webm") == ".webm"
    assert sniff_suffix(b"\x1a\x45\xdf\xa3\x01\x00\x00\x00matroska") == ".mkv"
    assert sniff_suffix(b"RIFF\x00\x00\x00\x00AVI LIST") == ".avi"
    assert sniff_suffix(b"\x00\x00\x00\x14ftypqt  ") == ".mov"
    assert sniff_suffix(b"something else") == ".mp4"

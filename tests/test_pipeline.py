"""The text-video-retrieval pipeline: rankings follow model.similarity, zero-shot form, batching, saved folders."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import pipeline

from modeling_tvr import TextVideoRetrievalPipeline, VideoReadError

from .helpers import tiny_model_for, tiny_processor
from .videos import write_video

TEXTS = ["a dog runs on the beach", "a red car", "people dance at night"]


def noise_video(seed: int, frames: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 40, 56, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    processor = tiny_processor(folder)
    # Seed 0 gives this tiny random model distinct, non-zero WTI scores on these videos (no ties to break); a seed
    # whose features are all anti-aligned scores 0 for several pairs (the maxima include padding's 0).
    model = tiny_model_for(processor.tokenizer, seed=0)
    videos = [
        str(write_video(folder / "a.mp4", 2.0, width=64)),
        noise_video(1),
        str(write_video(folder / "b.mp4", 1.0, width=48, height=64)),
        noise_video(2, frames=9),
        (str(folder / "a.mp4"), 0.5, 1.5),
    ]
    return folder, model, processor, videos


@pytest.fixture(scope="module")
def pipe(parts):
    _, model, processor, _ = parts
    return pipeline("text-video-retrieval", model=model, processor=processor)


def direct_similarity(model, processor, texts, videos) -> torch.Tensor:
    inputs = processor(text=texts, videos=videos)
    with torch.no_grad():
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).text_embeds
        video = model.get_video_features(inputs["pixel_values_videos"], inputs["video_mask"]).video_embeds
        return model.similarity(text, inputs["attention_mask"], video, inputs["video_mask"])


def test_registered_task_builds_the_pipeline(pipe):
    assert isinstance(pipe, TextVideoRetrievalPipeline)
    assert pipe.task == "text-video-retrieval"


def test_videos_are_ranked_by_the_models_similarity(parts, pipe):
    _, model, processor, videos = parts
    expected = direct_similarity(model, processor, TEXTS, videos)
    assert len(set(expected.flatten().tolist())) == expected.numel(), "fixture must give distinct scores"
    results = pipe(TEXTS, videos=videos)
    assert len(results) == len(TEXTS)
    for row, ranked in zip(expected, results, strict=True):
        assert [item["index"] for item in ranked] == torch.argsort(row, descending=True).tolist()
        torch.testing.assert_close(torch.tensor([item["score"] for item in ranked]), row.sort(descending=True).values)
        for item in ranked:
            assert item["video"] is videos[item["index"]]
            assert isinstance(item["score"], float)


def test_a_single_text_returns_one_list_and_top_k_cuts_it(parts, pipe):
    _, _, _, videos = parts
    full = pipe(TEXTS[0], videos=videos)
    assert isinstance(full, list) and all(isinstance(item, dict) for item in full)
    assert len(full) == len(videos)
    assert pipe(texts=TEXTS[0], videos=videos, top_k=2) == full[:2]
    assert pipe(TEXTS[0], videos=videos, top_k=99) == full


def test_top_k_given_at_construction_is_the_default(parts):
    _, model, processor, videos = parts
    pipe = pipeline("text-video-retrieval", model=model, processor=processor, top_k=1)
    assert len(pipe(TEXTS[0], videos=videos)) == 1
    assert len(pipe(TEXTS[0], videos=videos, top_k=3)) == 3


def test_zero_shot_classification_is_a_softmax_over_candidates(parts, pipe):
    _, model, processor, videos = parts
    labels = ["dog", "car", "dancers"]
    template = "a video of {}"
    result = pipe(videos[0], candidate_labels=labels, hypothesis_template=template)
    assert [set(item) for item in result] == [{"label", "score"}] * 3
    sim = direct_similarity(model, processor, [template.format(label) for label in labels], [videos[0]])[:, 0]
    probabilities = (model.logit_scale.detach().exp() * sim).softmax(dim=0)
    assert [item["label"] for item in result] == [labels[i] for i in torch.argsort(probabilities, descending=True)]
    torch.testing.assert_close(sum(item["score"] for item in result), 1.0)
    torch.testing.assert_close(
        torch.tensor([item["score"] for item in result]), probabilities.sort(descending=True).values
    )
    several = pipe(videos=videos[:2], candidate_labels=labels, hypothesis_template=template, top_k=1)
    assert len(several) == 2 and all(len(ranked) == 1 for ranked in several)
    assert several[0] == result[:1]


def test_one_video_with_several_texts_ranks_the_texts_by_raw_similarity(parts, pipe):
    _, model, processor, videos = parts
    sim = direct_similarity(model, processor, TEXTS, [videos[1]])[:, 0]
    result = pipe(texts=TEXTS, videos=videos[1])
    assert [item["index"] for item in result] == torch.argsort(sim, descending=True).tolist()
    assert [item["text"] for item in result] == [TEXTS[item["index"]] for item in result]
    torch.testing.assert_close(torch.tensor([item["score"] for item in result]), sim.sort(descending=True).values)
    per_video = pipe(texts=TEXTS, videos=videos, rank="texts")
    assert len(per_video) == len(videos)
    assert [item["index"] for item in per_video[1]] == [item["index"] for item in result]
    torch.testing.assert_close([item["score"] for item in per_video[1]], [item["score"] for item in result])


def test_batching_gives_the_unbatched_result(parts, pipe):
    _, _, _, videos = parts
    one_by_one = pipe(TEXTS, videos=videos, batch_size=1)
    all_at_once = pipe(TEXTS, videos=videos, batch_size=64)
    for a, b in zip(one_by_one, all_at_once, strict=True):
        assert [item["index"] for item in a] == [item["index"] for item in b]
        torch.testing.assert_close([item["score"] for item in a], [item["score"] for item in b], atol=1e-5, rtol=0)


def test_each_side_is_encoded_once_in_batches(parts, pipe, monkeypatch):
    _, model, _, videos = parts
    calls = {"text": [], "video": []}
    text_features, video_features = model.get_text_features, model.get_video_features

    def count_text(input_ids, attention_mask=None):
        calls["text"].append(len(input_ids))
        return text_features(input_ids, attention_mask)

    def count_video(pixel_values_videos, video_mask=None):
        calls["video"].append(len(pixel_values_videos))
        return video_features(pixel_values_videos, video_mask)

    monkeypatch.setattr(model, "get_text_features", count_text)
    monkeypatch.setattr(model, "get_video_features", count_video)
    pipe(TEXTS, videos=videos, batch_size=2)
    assert calls == {"text": [2, 1], "video": [2, 2, 1]}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda pipe, videos: pipe("a dog"), "No videos given"),
        (lambda pipe, videos: pipe("a dog", videos=[]), "No videos given"),
        (lambda pipe, videos: pipe(videos=videos), "No texts given"),
        (lambda pipe, videos: pipe([], videos=videos), "No texts given"),
        (lambda pipe, videos: pipe(["a dog", " "], videos=videos), r"texts\[1\] holds only whitespace"),
        (lambda pipe, videos: pipe(["a dog", ""], videos=videos), r"texts\[1\] is empty"),
        (lambda pipe, videos: pipe(["a dog", "\u200b\x1b"], videos=videos), r"texts\[1\] holds only control"),
        (lambda pipe, videos: pipe(" ", videos=videos), "The text holds only whitespace"),
        (lambda pipe, videos: pipe(videos[0], candidate_labels=["a", "\t"]), r"candidate_labels\[1\] holds only"),
        (lambda pipe, videos: pipe(videos[0], candidate_labels=[]), "No candidate_labels given"),
        (lambda pipe, videos: pipe(texts=["a"], videos=videos, candidate_labels=["b"]), "not both"),
        (lambda pipe, videos: pipe("a dog", texts="a cat", videos=videos), "not both"),
        (lambda pipe, videos: pipe("a dog", videos=videos, top_k=0), "top_k must be a positive integer"),
        (lambda pipe, videos: pipe("a dog", videos=videos, batch_size=0), "batch_size must be a positive integer"),
        (lambda pipe, videos: pipe("a dog", videos=videos, rank="frames"), "rank must be one of"),
        (lambda pipe, videos: pipe(videos[0], candidate_labels=["a"], hypothesis_template="x"), "must contain"),
    ],
)
def test_invalid_calls_say_what_is_wrong(parts, pipe, call, message):
    with pytest.raises(ValueError, match=message):
        call(pipe, parts[3])


def test_unknown_option_is_a_type_error(parts, pipe):
    with pytest.raises(TypeError, match="Unknown text-video-retrieval pipeline options"):
        pipe("a dog", videos=parts[3], temperature=2)


def test_an_unreadable_video_is_named_with_its_position_in_the_input(parts, pipe, tmp_path):
    folder, _, _, videos = parts
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 20)
    with pytest.raises(VideoReadError, match=r"broken\.mp4.*\(video 3 of the input\)") as error:
        pipe("a dog", videos=[videos[0], videos[1], videos[2], str(broken)], batch_size=2)
    # The position is data on the error, and the reason is the decoder's alone.
    assert (error.value.source, error.value.position, error.value.where) == (str(broken), 3, "the input")
    assert "of the batch" not in error.value.reason and "of the input" not in error.value.reason
    with pytest.raises(VideoReadError, match=r"missing\.mp4.*\(video 1 of the input\)"):
        pipe("a dog", videos=[videos[0], str(folder / "missing.mp4")])
    with pytest.raises(TypeError, match="Video 0"):
        pipe("a dog", videos=[42])


def test_a_pipeline_needs_a_processor(parts):
    with pytest.raises(ValueError, match="needs the model's processor"):
        TextVideoRetrievalPipeline(model=parts[1])


def test_model_save_pretrained_carries_the_pipeline(parts, tmp_path):
    _, model, _, _ = parts
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "text-video-retrieval": {
            "impl": "pipeline_drl.TextVideoRetrievalPipeline",
            "pt": ["AutoModel"],
            "type": "multimodal",
        }
    }
    # The pipeline's own siblings are the standard-library-only caption rule: a model folder needs no video decoder.
    code = (tmp_path / "pipeline_drl.py").read_text()
    imports = [line.strip() for line in code.splitlines() if line.strip().startswith(("from ", "import "))]
    assert imports and not [line for line in imports if "modeling_tvr" in line]
    assert [line for line in imports if line.startswith("from .")] == ["from .caption_checks import check_captions"]
    rule = (tmp_path / "caption_checks.py").read_text()
    assert {line.split()[1] for line in rule.splitlines() if line.startswith(("from ", "import "))} <= set(
        sys.stdlib_module_names
    ) | {"collections.abc"}


@pytest.mark.slow
def test_fresh_process_loads_the_pipeline_from_saved_folders(parts, pipe, tmp_path):
    """Both what train.py writes (model + processor) and `pipe.save_pretrained` load where the package is absent."""
    folder, model, processor, videos = parts
    model.save_pretrained(tmp_path / "trained")
    processor.save_pretrained(tmp_path / "trained")
    pipe.save_pretrained(tmp_path / "from_pipeline")
    paths = [videos[0], videos[2]]
    expected = pipe(TEXTS, videos=paths)
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["modeling_tvr"] = None  # importing the package now fails
        from transformers import pipeline
        results = {{}}
        for name in ("trained", "from_pipeline"):
            pipe = pipeline("text-video-retrieval", model={str(tmp_path)!r} + "/" + name, trust_remote_code=True)
            assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
            results[name] = pipe({TEXTS!r}, videos={paths!r})
            try:
                pipe("a dog", videos=[{paths[0]!r}, "missing.mp4"])
            except ValueError as error:
                results[name + "_error"] = [type(error).__name__, str(error)]
        print(json.dumps(results))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("trained", "from_pipeline"):
        for got, want in zip(loaded[name], expected, strict=True):
            assert [item["index"] for item in got] == [item["index"] for item in want]
            torch.testing.assert_close([item["score"] for item in got], [item["score"] for item in want])
        error_type, error_message = loaded[name + "_error"]
        assert error_type == "VideoReadError"
        assert "missing.mp4" in error_message and "video 1 of the input" in error_message

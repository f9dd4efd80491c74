"""The model card written next to a trained folder: parses with ModelCard.load, carries and accumulates results."""

from huggingface_hub import ModelCard

from modeling_tvr import DRLVideoProcessor
from modeling_tvr.training.model_card import write_model_card

from .helpers import tiny_config

METRICS = {
    "t2v": {"R@1": 12.5, "R@5": 52.8, "R@10": 86.1, "MdR": 5.0, "MnR": 6.6},
    "v2t": {"R@1": 9.7, "R@5": 52.8, "R@10": 80.6, "MdR": 5.0, "MnR": 7.0},
}


def write(folder, metrics, benchmark="toy", split="test"):
    return write_model_card(
        folder,
        tiny_config(),
        metrics,
        benchmark,
        split,
        "best epoch on validation",
        DRLVideoProcessor(),
        repo_id="someone/drl-toy",
    )


def test_card_parses_and_carries_the_measured_results(tmp_path):
    write(tmp_path, METRICS)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-video-retrieval"
    assert "text-video-retrieval" in card.data.tags and card.data.datasets == ["toy"]
    values = {(r.metric_name, r.dataset_split): r.metric_value for r in card.data.eval_results}
    assert values[("t2v R@1", "test")] == 12.5 and values[("v2t MnR", "test")] == 7.0
    assert "| toy | test | t2v | 12.5 | 52.8 | 86.1 | 5.0 | 6.6 |" in card.text
    assert 'AutoModel.from_pretrained("someone/drl-toy", trust_remote_code=True)' in card.text
    assert 'pipeline("text-video-retrieval", model="someone/drl-toy", trust_remote_code=True)' in card.text


def test_new_results_are_appended_and_same_metrics_replaced(tmp_path):
    write(tmp_path, METRICS)
    write(tmp_path, {"t2v": {"R@1": 40.0}}, benchmark="msrvtt")
    write(tmp_path, {"t2v": {"R@1": 13.0}})  # the toy test R@1 again: replaces the old value
    card = ModelCard.load(tmp_path / "README.md")
    values = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert values[("msrvtt", "t2v R@1")] == 40.0
    assert values[("toy", "t2v R@1")] == 13.0
    assert values[("toy", "v2t R@5")] == 52.8
    assert sorted(card.data.datasets) == ["msrvtt", "toy"]


def test_card_without_training_data_or_results_names_the_weights_source(tmp_path):
    """A converted, not yet fine-tuned checkpoint: no datasets, no results, where the weights come from."""
    card = write_model_card(
        tmp_path,
        tiny_config(),
        None,
        None,
        None,
        None,
        DRLVideoProcessor(),
        base_model="openai/clip-vit-base-patch32",
        source="OpenAI CLIP `ViT-B-32.pt` converted",
    )
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.datasets is None and loaded.data.eval_results is None
    assert loaded.data.base_model == "openai/clip-vit-base-patch32"
    assert "- Weights: OpenAI CLIP `ViT-B-32.pt` converted." in card.text and "Trained on" not in card.text
    assert "No evaluation recorded yet." in card.text

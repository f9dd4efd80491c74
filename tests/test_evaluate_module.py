"""The `evaluate` module at metrics/text_video_retrieval: loads offline, equals `modeling_tvr.training.metrics`
exactly."""

from pathlib import Path

import evaluate
import pytest
import torch

from modeling_tvr.training import metrics as tvr_metrics
from modeling_tvr.training.metrics import dual_softmax, retrieval_metrics

METRIC_DIR = Path(__file__).resolve().parents[1] / "metrics" / "text_video_retrieval"
KEYS = [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MdR", "MnR")]


def flatten(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{direction}_{name}": value for direction, values in metrics.items() for name, value in values.items()}


@pytest.fixture(scope="module")
def metric() -> evaluate.EvaluationModule:
    return evaluate.load(str(METRIC_DIR))


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    """40 captions of 15 videos (video 14 has none); scores rounded to one decimal so ties are common."""
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(40, 15, generator=g).round(decimals=1)
    t2v = torch.randint(0, 14, (40,), generator=g)
    sim[torch.arange(40), t2v] += 0.5  # better than chance, so the recalls are not all near zero
    return sim, t2v


def test_loads_offline_and_calls_the_package_function(metric):
    assert type(metric).__name__ == "TextVideoRetrieval"
    assert "Disentangled Representation Learning" in metric.citation
    assert set(metric.features) == {"predictions", "references"}
    script = __import__(type(metric).__module__, fromlist=["retrieval_metrics"])
    assert script.retrieval_metrics is tvr_metrics.retrieval_metrics  # the same function, not a copy


def test_compute_equals_retrieval_metrics(metric, data):
    sim, t2v = data
    expected = flatten(retrieval_metrics(sim, t2v))
    assert len(set(t2v.tolist())) < len(t2v)  # several captions per video
    assert (sim == sim[torch.arange(len(t2v)), t2v][:, None]).sum() > len(t2v)  # ties with the targets
    results = metric.compute(predictions=sim.tolist(), references=t2v.tolist())
    assert list(results) == KEYS
    assert results == expected
    assert 0 < results["t2v_R@1"] < 100 and 0 < results["v2t_R@1"] < 100


def test_add_batch_gives_the_same(metric, data):
    sim, t2v = data
    for start in range(0, len(t2v), 7):
        metric.add_batch(predictions=sim[start : start + 7].tolist(), references=t2v[start : start + 7].tolist())
    assert metric.compute() == flatten(retrieval_metrics(sim, t2v))


def test_add_per_query_gives_the_same(metric, data):
    sim, t2v = data
    for row, target in zip(sim.tolist(), t2v.tolist(), strict=True):
        metric.add(predictions=row, references=target)
    assert metric.compute() == flatten(retrieval_metrics(sim, t2v))


def test_dual_softmax_option(metric, data):
    sim, t2v = data
    results = metric.compute(predictions=sim.tolist(), references=t2v.tolist(), dual_softmax=True)
    assert results == flatten(retrieval_metrics(dual_softmax(sim), t2v))
    assert results != metric.compute(predictions=sim.tolist(), references=t2v.tolist())
    cooler = metric.compute(
        predictions=sim.tolist(), references=t2v.tolist(), dual_softmax=True, dual_softmax_temperature=1.0
    )
    assert cooler == flatten(retrieval_metrics(dual_softmax(sim, temperature=1.0), t2v))


def test_worked_example(metric):
    results = metric.compute(
        predictions=[[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.7, 0.1, 0.3], [0.3, 0.2, 0.4]], references=[0, 1, 2, 2]
    )
    # The dict the module's README shows for this example.
    assert results == {
        "t2v_R@1": 75.0,
        "t2v_R@5": 100.0,
        "t2v_R@10": 100.0,
        "t2v_MdR": 1.0,
        "t2v_MnR": 1.25,
        "v2t_R@1": 100.0,
        "v2t_R@5": 100.0,
        "v2t_R@10": 100.0,
        "v2t_MdR": 1.0,
        "v2t_MnR": 1.0,
    }


def test_bad_inputs_are_rejected(metric):
    with pytest.raises(ValueError, match="same number of videos"):
        metric.compute(predictions=[[0.1, 0.2], [0.3]], references=[0, 1])
    with pytest.raises(ValueError, match="indices must lie in"):
        metric.compute(predictions=[[0.1, 0.2], [0.3, 0.4]], references=[0, 2])

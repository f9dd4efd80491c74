"""Retrieval metrics: ranks, ties that never flatter, several captions per video, dual softmax."""

import pytest
import torch

from modeling_tvr.training.metrics import dual_softmax, format_metrics_table, retrieval_metrics, retrieval_ranks


def brute_force_ranks(sim, t2v):
    """Plain loops over the definitions in `modeling_tvr.training.metrics` (ranks that ties never flatter, R@K, MdR,
    MnR)."""
    n_texts, n_videos = len(sim), len(sim[0])
    t_ranks = [1 + sum(sim[i][j] >= sim[i][t2v[i]] for j in range(n_videos) if j != t2v[i]) for i in range(n_texts)]
    groups = {v: [i for i in range(n_texts) if t2v[i] == v] for v in range(n_videos)}
    v_ranks = []
    for v in range(n_videos):
        if not groups[v]:
            continue
        score = {g: max(sim[i][v] for i in idx) for g, idx in groups.items() if idx}
        v_ranks.append(1 + sum(s >= score[v] for g, s in score.items() if g != v))
    return t_ranks, v_ranks


def test_perfect_diagonal_gives_rank_one_everywhere():
    metrics = retrieval_metrics(torch.eye(4) + 0.1, [0, 1, 2, 3])
    perfect = {"R@1": 100.0, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 1.0}
    assert metrics == {"t2v": perfect, "v2t": perfect}


def test_ties_count_against_the_model():
    sim = torch.tensor([[0.5, 0.5, 0.1], [0.0, 1.0, 0.0], [0.2, 0.2, 0.2]])
    t_ranks, _ = retrieval_ranks(sim, [0, 1, 2])
    assert t_ranks.tolist() == [2, 1, 3]


def test_ranks_equal_a_brute_force_reference_with_several_captions_per_video():
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(30, 8, generator=g).round(decimals=1)  # rounding creates ties
    t2v = torch.randint(0, 7, (30,), generator=g)  # video 7 has no caption
    t_ranks, v_ranks = retrieval_ranks(sim, t2v)
    expected_t, expected_v = brute_force_ranks(sim.tolist(), t2v.tolist())
    assert t_ranks.tolist() == expected_t
    assert v_ranks.tolist() == expected_v


def test_video_to_text_uses_the_best_caption_of_each_group():
    # Video 0's captions score 0.1 and 0.9; video 1's single caption 0.8: video 0 still ranks its group first.
    sim = torch.tensor([[0.1, 0.0], [0.9, 0.0], [0.8, 1.0]])
    _, v_ranks = retrieval_ranks(sim, [0, 0, 1])
    assert v_ranks.tolist() == [1, 1]


RANKS_123 = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.5, 0.0], [1.0, 0.9, 0.1]])  # t2v ranks 1, 2, 3; v2t 3, 2, 1


def test_recall_median_and_mean_rank():
    assert [r.tolist() for r in retrieval_ranks(RANKS_123, [0, 1, 2])] == [[1, 2, 3], [3, 2, 1]]
    metrics = retrieval_metrics(RANKS_123, [0, 1, 2])
    expected = {"R@1": pytest.approx(100 / 3), "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0}
    assert metrics == {"t2v": expected, "v2t": expected}
    # Twelve texts whose videos rank 1 to 12: R@K counts ranks up to K; the median of an even count is the mean of
    # the two middle ranks.
    sim = -torch.arange(12.0).expand(12, 12)  # video j scores -j for every text: text i's video i ranks i + 1
    assert retrieval_ranks(sim, list(range(12)))[0].tolist() == list(range(1, 13))
    expected = {"R@1": 100 / 12, "R@5": 500 / 12, "R@10": 1000 / 12, "MdR": 6.5, "MnR": 6.5}
    assert retrieval_metrics(sim, list(range(12)))["t2v"] == pytest.approx(expected)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="entries for 2 texts"):
        retrieval_metrics(torch.zeros(2, 2), [0])
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        retrieval_metrics(torch.zeros(2, 2), [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(torch.full((2, 2), float("nan")), [0, 1])


def test_dual_softmax_can_fix_a_hub_video():
    # Video 0 is every text's top match (a hub); DSL weighs it by how much each text prefers it over other texts.
    sim = torch.tensor([[0.9, 0.1, 0.1], [0.8, 0.7, 0.1], [0.8, 0.1, 0.7]])
    assert retrieval_metrics(sim, [0, 1, 2])["t2v"]["R@1"] == pytest.approx(100 / 3)
    assert retrieval_metrics(dual_softmax(sim), [0, 1, 2])["t2v"]["R@1"] == 100.0


def test_table_has_one_row_per_direction_with_one_decimal():
    table = format_metrics_table(retrieval_metrics(RANKS_123, [0, 1, 2]))
    assert table.splitlines() == [
        "| direction | R@1 | R@5 | R@10 | MdR | MnR |",
        "| --- | --- | --- | --- | --- | --- |",
        "| t2v | 33.3 | 100.0 | 100.0 | 2.0 | 2.0 |",
        "| v2t | 33.3 | 100.0 | 100.0 | 2.0 | 2.0 |",
    ]

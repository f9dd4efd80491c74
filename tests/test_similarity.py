"""Similarity: the chunked scoring equals the authors' full-tensor formulation for every interaction."""

import pytest
import torch

from modeling_tvr.interaction_drl import chunk_sizes, prepare_tokens, text_video_similarity, token_wise_similarity

from .helpers import tiny_model


def full_tensor_reference(text, text_mask, video, video_mask, text_w, video_w, interaction):
    """The authors' formula, written independently of the package: one [a, b, t, v] tensor, masks multiplied."""
    t = text / text.norm(dim=-1, keepdim=True)
    v = video / video.norm(dim=-1, keepdim=True)
    s = torch.einsum("atd,bvd->abtv", t, v)
    s = s * text_mask[:, None, :, None] * video_mask[None, :, None, :]
    if interaction == "ti":
        text_w = text_mask / text_mask.sum(-1, keepdim=True)
        video_w = video_mask / video_mask.sum(-1, keepdim=True)
    t2v = torch.einsum("abt,at->ab", s.max(dim=-1).values, text_w)
    v2t = torch.einsum("abv,bv->ab", s.max(dim=-2).values, video_w)
    return (t2v + v2t) / 2


def scored_with_options(model, text, text_mask, video, video_mask, **options) -> torch.Tensor:
    """The model's interaction through `text_video_similarity`, which takes the block options the model leaves out."""
    heads = (model.text_weight_head, model.video_weight_head)
    return text_video_similarity(text, text_mask, video, video_mask, model.config.interaction, *heads, **options)


def random_features(n_text=7, n_video=5, tokens=16, frames=6, dim=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(n_text, tokens, dim, generator=g)
    video = torch.randn(n_video, frames, dim, generator=g)
    text_mask = (torch.arange(tokens) < torch.randint(2, tokens + 1, (n_text, 1), generator=g)).float()
    video_mask = (torch.arange(frames) < torch.randint(1, frames + 1, (n_video, 1), generator=g)).float()
    return text, text_mask, video, video_mask


@pytest.mark.parametrize("interaction", ["wti", "ti"])
def test_model_similarity_equals_full_tensor_formulation(interaction):
    model = tiny_model(interaction=interaction)
    text, text_mask, video, video_mask = random_features()
    with torch.no_grad():
        ours = model.similarity(text, text_mask, video, video_mask)
        reference = full_tensor_reference(
            text,
            text_mask,
            video,
            video_mask,
            model.token_weights(text, text_mask),
            model.frame_weights(video, video_mask),
            interaction,
        )
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_padded_pairs_score_zero_so_a_padded_frame_can_win_the_max():
    # One token pointing away from every real frame: its best "frame" is a padded one at 0, not a negative cosine.
    text = torch.tensor([[[1.0, 0.0]]])
    video = torch.tensor([[[-1.0, 0.0], [5.0, 5.0]]])
    ones = torch.ones(1, 1)
    similarity = token_wise_similarity(
        prepare_tokens(text, ones), ones, prepare_tokens(video, torch.tensor([[1.0, 0.0]])), torch.tensor([[1.0, 0.0]])
    )
    # t2v: max(-1, 0) = 0; v2t: the real frame's best token scores -1, weight 1.
    assert similarity.item() == pytest.approx((0.0 + -1.0) / 2)


@pytest.mark.parametrize("chunk_bytes", [1, 4096, 10**9])
def test_chunking_does_not_change_the_result(chunk_bytes):
    text, text_mask, video, video_mask = random_features(n_text=23, n_video=17)
    args = (prepare_tokens(text, text_mask), text_mask / text_mask.sum(-1, keepdim=True))
    vargs = (prepare_tokens(video, video_mask), video_mask / video_mask.sum(-1, keepdim=True))
    whole = token_wise_similarity(*args, *vargs, chunk_bytes=10**12)
    torch.testing.assert_close(token_wise_similarity(*args, *vargs, chunk_bytes=chunk_bytes), whole)


@pytest.mark.parametrize("chunk_bytes", [1, 4096, 10**12])
def test_skipped_padding_scores_as_the_full_tensor_with_interior_padding_and_negative_cosines(chunk_bytes):
    # Masks with holes and lengths from 1 to full, and features whose cosines are mostly negative, so that the
    # padded zeros often win the maxima: trimming padding must give exactly the masked full tensor.
    g = torch.Generator().manual_seed(3)
    text, video = torch.randn(19, 9, 8, generator=g), torch.randn(13, 5, 8, generator=g)
    text[:, :, 0] += 3.0
    video[:, :, 0] -= 3.0
    text_mask = (torch.rand(19, 9, generator=g) < 0.6).float()
    video_mask = (torch.rand(13, 5, generator=g) < 0.6).float()
    text_mask[:, 0] = video_mask[:, 0] = 1
    text_mask[0], video_mask[0] = 1, 1  # and items with no padding at all
    text_w = torch.softmax(torch.randn(19, 9, generator=g).masked_fill(text_mask == 0, float("-inf")), -1)
    video_w = torch.softmax(torch.randn(13, 5, generator=g).masked_fill(video_mask == 0, float("-inf")), -1)
    ours = token_wise_similarity(
        prepare_tokens(text, text_mask), text_w, prepare_tokens(video, video_mask), video_w, chunk_bytes=chunk_bytes
    )
    reference = full_tensor_reference(text, text_mask, video, video_mask, text_w, video_w, "wti")
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    with_masks = token_wise_similarity(
        prepare_tokens(text, text_mask),
        text_w,
        prepare_tokens(video, video_mask),
        video_w,
        chunk_bytes=chunk_bytes,
        text_mask=text_mask,
        video_mask=video_mask,
    )
    torch.testing.assert_close(with_masks, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_products_stay_close_and_return_float32(dtype):
    text, text_mask, video, video_mask = random_features(n_text=11, n_video=9)
    model = tiny_model()
    with torch.no_grad():
        exact = model.similarity(text, text_mask, video, video_mask)
        half = scored_with_options(model, text, text_mask, video, video_mask, compute_dtype=dtype)
    assert half.dtype == torch.float32
    # Cosines in [-1, 1] rounded to 8 (bf16) or 11 (fp16) mantissa bits.
    torch.testing.assert_close(half, exact, rtol=0, atol=2e-2 if dtype == torch.bfloat16 else 2e-3)
    assert not torch.equal(half, exact)  # the option does change the arithmetic


@pytest.mark.parametrize("interaction", ["wti", "ti", "dp"])
def test_model_similarity_is_the_blocked_scorer_and_equals_the_dense_one(interaction):
    model = tiny_model(interaction=interaction)
    text, text_mask, video, video_mask = random_features(n_text=9, n_video=8)
    with torch.no_grad():
        ours = model.similarity(text, text_mask, video, video_mask)
        torch.testing.assert_close(ours, scored_with_options(model, text, text_mask, video, video_mask), rtol=0, atol=0)
        dense = scored_with_options(model, text, text_mask, video, video_mask, dense=True)
    torch.testing.assert_close(ours, dense, rtol=1e-5, atol=1e-6)


def test_chunk_sizes_respect_the_budget():
    texts, videos = chunk_sizes(1000, 1000, 32, 12, 4, 64 * 1024**2)
    assert texts * videos * 32 * 12 * 4 <= 64 * 1024**2
    assert texts > 1 and videos > 1
    assert chunk_sizes(3, 2, 32, 12, 4, 10**12) == (3, 2)


def test_dot_product_interaction_uses_end_token_and_mean_pooled_video():
    model = tiny_model(interaction="dp")
    text, text_mask, video, video_mask = random_features()
    with torch.no_grad():
        ours = model.similarity(text, text_mask, video, video_mask)
    last = text_mask.sum(-1).long() - 1
    eot = text[torch.arange(text.shape[0]), last]
    eot = eot / eot.norm(dim=-1, keepdim=True)
    frames = video / video.norm(dim=-1, keepdim=True)
    pooled = (frames * video_mask[..., None]).sum(1) / video_mask.sum(1, keepdim=True)
    pooled = pooled / pooled.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(ours, eot @ pooled.T)


@pytest.mark.slow
def test_similarity_of_many_items_stays_within_the_chunk_budget():
    """A budget far below the full tensor still gives the same scores as scoring pair by pair."""
    model = tiny_model()
    text, text_mask, video, video_mask = random_features(n_text=40, n_video=30)
    with torch.no_grad():
        chunked = scored_with_options(model, text, text_mask, video, video_mask, chunk_bytes=16 * 1024)
        pairwise = torch.stack(
            [
                torch.cat(
                    [
                        model.similarity(text[i : i + 1], text_mask[i : i + 1], video[j : j + 1], video_mask[j : j + 1])
                        for j in range(30)
                    ],
                    dim=1,
                )[0]
                for i in range(40)
            ]
        )
    torch.testing.assert_close(chunked, pairwise, rtol=1e-5, atol=1e-6)

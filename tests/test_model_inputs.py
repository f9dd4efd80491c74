"""Forward semantics and clear errors on bad inputs (never a silent NaN)."""

import pytest
import torch

from .helpers import random_batch, tiny_model


def test_forward_returns_scaled_logits_and_their_transpose(model, batch):
    with torch.no_grad():
        out = model(**batch)
        similarity = model.similarity(out.text_embeds, batch["attention_mask"], out.video_embeds, batch["video_mask"])
    torch.testing.assert_close(out.logits_per_text, model.logit_scale.exp() * similarity)
    torch.testing.assert_close(out.logits_per_video, out.logits_per_text.T)
    assert out.text_embeds.shape == (3, 16, 64) and out.video_embeds.shape == (3, 6, 64)
    assert out.loss is None


def test_texts_and_videos_may_differ_in_number_without_loss(model):
    texts, videos = random_batch(batch=4), random_batch(batch=2, seed=1)
    with torch.no_grad():
        out = model(texts["input_ids"], texts["attention_mask"], videos["pixel_values_videos"], videos["video_mask"])
    assert out.logits_per_text.shape == (4, 2)


def test_features_match_forward(model, batch):
    with torch.no_grad():
        out = model(**batch)
        text = model.get_text_features(batch["input_ids"], batch["attention_mask"]).text_embeds
        video = model.get_video_features(batch["pixel_values_videos"], batch["video_mask"]).video_embeds
    torch.testing.assert_close(text, out.text_embeds)
    torch.testing.assert_close(video, out.video_embeds)


def test_padding_after_the_end_token_does_not_change_valid_token_features(model, batch):
    changed = batch["input_ids"].clone()
    changed[batch["attention_mask"] == 0] = 57
    with torch.no_grad():
        a = model.get_text_features(batch["input_ids"], batch["attention_mask"]).text_embeds
        b = model.get_text_features(changed, batch["attention_mask"]).text_embeds
    valid = batch["attention_mask"].bool()
    torch.testing.assert_close(a[valid], b[valid])


def test_padded_frames_do_not_change_the_similarity(model, batch):
    noisy = batch["pixel_values_videos"] + torch.randn_like(batch["pixel_values_videos"]) * (
        1 - batch["video_mask"][:, :, None, None, None]
    )
    with torch.no_grad():
        a = model(**batch).logits_per_text
        b = model(**{**batch, "pixel_values_videos": noisy}).logits_per_text
    torch.testing.assert_close(a, b)


def test_loss_with_mismatched_batch_sizes_is_rejected(model):
    texts, videos = random_batch(batch=3), random_batch(batch=2, seed=1)
    with pytest.raises(ValueError, match="matching pairs: got 3 texts and 2 videos"):
        model(
            texts["input_ids"],
            texts["attention_mask"],
            videos["pixel_values_videos"],
            videos["video_mask"],
            return_loss=True,
        )


def test_video_mask_batch_must_match_pixels(model, batch):
    with pytest.raises(ValueError, match="video_mask shape"):
        model(**{**batch, "video_mask": batch["video_mask"][:2]})


def test_attention_mask_shape_must_match_input_ids(model, batch):
    with pytest.raises(ValueError, match="attention_mask shape"):
        model(**{**batch, "attention_mask": batch["attention_mask"][:, :8]})


@pytest.mark.parametrize(
    ("shape", "message"),
    [((3, 6, 32, 32), r"\[batch, frames, 3, height, width\]"), ((3, 6, 3, 48, 48), "expects 32x32")],
)
def test_wrong_pixel_shape_is_rejected(model, batch, shape, message):
    with pytest.raises(ValueError, match=message):
        model(**{**batch, "pixel_values_videos": torch.zeros(shape)})


def test_all_zero_video_mask_is_rejected_naming_the_video(model, batch):
    mask = batch["video_mask"].clone()
    mask[1] = 0
    with pytest.raises(ValueError, match=r"positions \[1\] have an all-zero video_mask"):
        model(**{**batch, "video_mask": mask})


def test_empty_caption_mask_is_rejected_naming_the_caption(model, batch):
    mask = batch["attention_mask"].clone()
    mask[2] = 0
    with pytest.raises(ValueError, match=r"positions \[2\] have an all-zero attention_mask"):
        model(**{**batch, "attention_mask": mask})


def test_text_longer_than_the_position_table_is_rejected(model):
    ids = torch.ones(1, 17, dtype=torch.long)
    with pytest.raises(ValueError, match="17 tokens but the text tower has 16 positions"):
        model.get_text_features(ids)


def test_more_frames_than_the_temporal_position_table_is_rejected():
    model = tiny_model(max_frame_positions=8)
    with pytest.raises(ValueError, match="9 frames per video exceed the 8 frame positions"):
        model.get_video_features(torch.zeros(1, 9, 3, 32, 32))


def test_tuple_output_when_return_dict_is_false(model, batch):
    with torch.no_grad():
        out = model(**batch, return_dict=False)
    assert isinstance(out, tuple) and out[0].shape == (3, 3)

"""The `text-video-retrieval` pipeline: rank videos for text queries, texts for videos, or classify videos zero-shot.

This file travels with every saved DRL checkpoint, whose `config.custom_pipelines` names it (see
`configuration_drl.CUSTOM_PIPELINES`). Of its siblings it imports only `caption_checks` (standard library alone), so a
model folder loads without the video decoding dependencies that only the processor needs.
"""

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

from .caption_checks import check_captions

# Videos are decoded and encoded this many at a time unless `batch_size` says otherwise; texts are cheap.
DEFAULT_VIDEO_BATCH_SIZE = 8
DEFAULT_TEXT_BATCH_SIZE = 64
RANK_CHOICES = ("videos", "texts")


def is_single_video(video: Any) -> bool:
    """A path, a `(path, start_s, end_s)` segment or one decoded video `[F, H, W, 3]` (as the processor reads them)."""
    if isinstance(video, (str, os.PathLike)):
        return True
    if (
        isinstance(video, tuple)
        and len(video) == 3
        and isinstance(video[0], (str, os.PathLike))
        and all(t is None or isinstance(t, (int, float)) for t in video[1:])
    ):
        return True
    return isinstance(video, (np.ndarray, torch.Tensor)) and video.ndim == 4


def _as_video_list(videos: Any) -> list:
    if videos is None:
        raise ValueError("No videos given: pass videos=<a video or a list of videos> (paths, segments or arrays).")
    items = [videos] if is_single_video(videos) else list(videos)
    if not items:
        raise ValueError("No videos given: the list of videos is empty.")
    return items


def _as_text_list(texts: Any, name: str = "texts", one: str = "The text") -> list[str]:
    """`texts` as a list, every item checked; errors name a list item `name[i]` and a lone string `one`."""
    if texts is None:
        raise ValueError(f"No {name} given.")
    # A dict would silently become its keys, a set its arbitrary order: only a string or a sequence of strings.
    if not isinstance(texts, (str, list, tuple)):
        raise TypeError(f"{name} must be a string or a list of strings, got {type(texts).__name__}.")
    if isinstance(texts, str):
        check_captions([texts], label=one)
        return [texts]
    items = list(texts)
    if not items:
        raise ValueError(f"No {name} given: the list is empty.")
    # Checked here, with positions in the whole input: the processor sees one batch at a time.
    check_captions(items, label=f"{name}[{{}}]")
    return items


def _placed(error: Exception, position: int) -> Exception:
    """The processor's error for a video, placed at the video's position in the pipeline's input."""
    if callable(getattr(error, "at", None)):  # a VideoReadError: the processor saw a batch of this one video
        return error.at(position, "the input")
    return type(error)(f"Video {position}: {error}")


def _ranked(scores: torch.Tensor, top_k: int | None) -> list[tuple[int, float]]:
    """`(index, score)` pairs by descending score; ties keep input order."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return [(i, float(scores[i])) for i in order[:top_k]]


class TextVideoRetrievalPipeline(Pipeline):
    """
    Text-video retrieval with a DRL model: ranks videos for text queries, texts for a video, or classifies videos
    against candidate labels (zero-shot, like `zero-shot-image-classification`).

    Each side is encoded once, in batches of `batch_size`, then every text is compared with every video by the
    model's own interaction (`model.similarity`: WTI, TI or DP, as configured).

    Call forms (`videos` are paths, `(path, start_s, end_s)` segments or uint8 arrays `[F, H, W, 3]`):

    - `pipe("a dog runs", videos=[...])` or `pipe(texts=..., videos=...)`: text-to-video retrieval. For each text,
      the videos ranked: `[{"video": <the input item>, "index": i, "score": s}, ...]`. One list per text; a single
      text string returns a single list. `score` is the raw similarity (not scaled by `logit_scale`, not
      softmaxed; about -1 to 1), comparable across queries and calls.
    - `pipe(texts=[...], videos=one_video)` (or `rank="texts"` with several videos): the texts ranked for each
      video, `[{"text": t, "index": j, "score": s}, ...]`, raw similarity as above.
    - `pipe(video_or_videos, candidate_labels=[...], hypothesis_template="{}")`: zero-shot classification, per
      video `[{"label": l, "score": p}, ...]` where `p` is the softmax over the candidates of
      `exp(logit_scale) * similarity` (as CLIP's zero-shot pipeline); the scores of one video sum to 1.

    Parameters for the call (or the constructor): `top_k` (default: all), `batch_size` (videos and texts per
    forward pass; defaults 8 videos, 64 texts), `rank` (`"videos"` or `"texts"`), `candidate_labels`,
    `hypothesis_template`.

    Raises `ValueError` for missing or empty texts / videos / labels and the processor's `VideoReadError` (a
    `ValueError`) naming the file and its position in the input for a video that cannot be read.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False  # transformers' video processor classes need torchvision; the processor has one
    _load_feature_extractor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(
                "The text-video-retrieval pipeline needs the model's processor: pass "
                "processor=AutoProcessor.from_pretrained(<model folder or repo>, trust_remote_code=True)."
            )

    # ------------------------------------------------------------------ parameters
    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        candidate_labels: Sequence[str] | None = None,
        hypothesis_template: str | None = None,
        rank: str | None = None,
        **kwargs,
    ) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"Unknown text-video-retrieval pipeline options: {sorted(kwargs)}.")
        params: dict[str, Any] = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
            params["top_k"] = top_k
        if rank is not None:
            if rank not in RANK_CHOICES:
                raise ValueError(f"rank must be one of {RANK_CHOICES}, got {rank!r}.")
            params["rank"] = rank
        if hypothesis_template is not None:
            if "{}" not in hypothesis_template:
                raise ValueError(f"hypothesis_template must contain '{{}}', got {hypothesis_template!r}.")
            params["hypothesis_template"] = hypothesis_template
        if candidate_labels is not None:
            params["candidate_labels"] = candidate_labels
        return {}, {}, params

    # ------------------------------------------------------------------ the call
    def __call__(
        self,
        inputs: Any = None,
        *,
        texts: str | Sequence[str] | None = None,
        videos: Any = None,
        batch_size: int | None = None,
        **kwargs,
    ) -> list:
        """
        Ranks videos for texts, texts for videos, or candidate labels for videos (see the class docstring).

        Args:
            inputs: the texts (retrieval) or, with `candidate_labels`, the videos (zero-shot classification).
            texts: a text or a list of texts.
            videos: a video or a list of videos.
            batch_size: videos and texts per forward pass.
            kwargs: `top_k`, `rank`, `candidate_labels`, `hypothesis_template`.

        Returns:
            One ranked list per query (per text, or per video when ranking texts or labels); a single query given
            as a single item (a string, one video) returns its list alone.
        """
        params = {**self._postprocess_params, **self._sanitize_parameters(**kwargs)[2]}
        batch_size = self._batch_size if batch_size is None else batch_size
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        labels = params.pop("candidate_labels", None)
        if labels is not None:
            if texts is not None:
                raise ValueError("Give candidate_labels (zero-shot classification) or texts (retrieval), not both.")
            if inputs is not None and videos is not None:
                raise ValueError("Give the videos once: as the first argument or as videos=..., not both.")
            return self._classify(videos if inputs is None else inputs, labels, batch_size, **params)
        if inputs is not None and texts is not None:
            raise ValueError("Give the texts once: as the first argument or as texts=..., not both.")
        texts = inputs if texts is None else texts
        if texts is None:
            raise ValueError("No texts given: pass texts=... (or candidate_labels=... to classify videos).")
        rank = params.pop("rank", None)
        if rank is None:  # one video against several texts ranks the texts; otherwise texts are the queries
            rank = "texts" if is_single_video(videos) and not isinstance(texts, str) else "videos"
        return self._retrieve(texts, videos, rank, batch_size, **params)

    def _retrieve(self, texts, videos, rank: str, batch_size: int | None, top_k: int | None = None, **unused) -> list:
        text_list = _as_text_list(texts)
        video_list = _as_video_list(videos)
        scores = self.similarity(text_list, video_list, batch_size)
        if rank == "videos":
            ranked = self.postprocess(scores, top_k)
            results = [[{"video": video_list[i], "index": i, "score": s} for i, s in row] for row in ranked]
            return results[0] if isinstance(texts, str) else results
        ranked = self.postprocess(scores.T, top_k)
        results = [[{"text": text_list[j], "index": j, "score": s} for j, s in row] for row in ranked]
        return results[0] if is_single_video(videos) else results

    def _classify(
        self,
        videos,
        candidate_labels,
        batch_size: int | None,
        top_k: int | None = None,
        hypothesis_template: str = "{}",
        **unused,
    ) -> list:
        labels = _as_text_list(candidate_labels, "candidate_labels", "The candidate label")
        video_list = _as_video_list(videos)
        similarity = self.similarity([hypothesis_template.format(label) for label in labels], video_list, batch_size)
        # CLIP's zero-shot recipe: softmax over the candidates of the temperature-scaled similarity.
        probabilities = (self.model.logit_scale.detach().exp().float().cpu() * similarity.T).softmax(dim=-1)
        ranked = self.postprocess(probabilities, top_k)
        results = [[{"label": labels[j], "score": p} for j, p in row] for row in ranked]
        return results[0] if is_single_video(videos) else results

    # ------------------------------------------------------------------ encoding
    def similarity(self, texts: list[str], videos: list, batch_size: int | None = None) -> torch.Tensor:
        """Raw similarity `[len(texts), len(videos)]` (float32, CPU): each side encoded once, in batches."""
        text_embeds, attention_mask = self.encode_texts(texts, batch_size or DEFAULT_TEXT_BATCH_SIZE)
        video_embeds, video_mask = self.encode_videos(videos, batch_size or DEFAULT_VIDEO_BATCH_SIZE)
        with self.device_placement(), torch.inference_mode():
            scores = self.model.similarity(text_embeds, attention_mask, video_embeds, video_mask)
        return scores.float().cpu()

    def encode_texts(self, texts: Iterable[str], batch_size: int = DEFAULT_TEXT_BATCH_SIZE):
        """Token features `[N, L, D]` and `attention_mask` `[N, L]`, on the pipeline's device."""
        text_list = _as_text_list(texts)
        parts = [
            self.forward_features(self.preprocess({"texts": text_list[start : start + batch_size]}))
            for start in range(0, len(text_list), batch_size)
        ]
        return torch.cat([p["text_embeds"] for p in parts]), torch.cat([p["attention_mask"] for p in parts])

    def encode_videos(self, videos: Any, batch_size: int = DEFAULT_VIDEO_BATCH_SIZE):
        """Frame features `[N, F, D]` and `video_mask` `[N, F]`, on the pipeline's device."""
        video_list = _as_video_list(videos)
        parts = [
            self.forward_features(self.preprocess({"videos": video_list[start : start + batch_size], "offset": start}))
            for start in range(0, len(video_list), batch_size)
        ]
        return torch.cat([p["video_embeds"] for p in parts]), torch.cat([p["video_mask"] for p in parts])

    def forward_features(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`_forward` on the pipeline's device without autograd; the features stay on the device."""
        with self.device_placement(), torch.inference_mode():
            return self._forward(self._ensure_tensor_on_device(model_inputs, device=self.device))

    def preprocess(self, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """`{"texts": [...]}` to token ids, or `{"videos": [...], "offset": k}` to frames (k: input position)."""
        if "texts" in inputs:
            encoded = self.processor(text=inputs["texts"], return_tensors="pt")
            return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        pixels, masks = [], []
        # One video per processor call, so that an unreadable video is reported at its position in the input.
        for position, video in enumerate(inputs["videos"], start=inputs.get("offset", 0)):
            try:
                encoded = self.processor(videos=[video], return_tensors="pt")
            except (ValueError, TypeError) as error:
                raise _placed(error, position) from error
            pixels.append(encoded["pixel_values_videos"])
            masks.append(encoded["video_mask"])
        return {"pixel_values_videos": torch.cat(pixels), "video_mask": torch.cat(masks)}

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "input_ids" in model_inputs:
            attention_mask = model_inputs["attention_mask"]
            embeds = self.model.get_text_features(model_inputs["input_ids"], attention_mask).text_embeds
            return {"text_embeds": embeds, "attention_mask": attention_mask}
        pixels = model_inputs["pixel_values_videos"].to(self.model.dtype)
        video_mask = model_inputs["video_mask"]
        video_embeds = self.model.get_video_features(pixels, video_mask).video_embeds
        return {"video_embeds": video_embeds, "video_mask": video_mask}

    def postprocess(self, model_outputs: torch.Tensor, top_k: int | None = None, **unused) -> list:
        """Ranks the columns of a `[queries, candidates]` score matrix: `[[(index, score), ...], ...]`."""
        return [_ranked(row, top_k) for row in model_outputs]

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs):
        """Saves the model (with this pipeline's code) and the processor, which `Pipeline.save_pretrained` skips."""
        super().save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)


__all__ = ["TextVideoRetrievalPipeline"]

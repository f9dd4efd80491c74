"""Custom handler for Hugging Face Inference Endpoints serving a DRL text-video retrieval checkpoint.

`hub_scripts/push_to_hub.py` puts this file at the root of the model repository as `handler.py`, with a
`requirements.txt`. It needs no `modeling_tvr` install: the model,
the processor and the `text-video-retrieval` pipeline all load from the repository with `trust_remote_code=True`
(PyAV must be installed for decoding, e.g. through a `requirements.txt` with `av`).

Requests (JSON):

- `{"inputs": {"video": "<base64 of a video file>", "texts": ["a dog runs", ...]}}` ranks the texts for the video:
  `[{"text": ..., "score": ...}, ...]`.
- `{"inputs": {"text": "a dog runs", "videos": ["<base64>", ...]}}` ranks the videos for the text:
  `[{"index": i, "score": ...}, ...]` with `index` into the given list.
- optional `"parameters": {"top_k": k}` keeps the best `k`.

Scores are the model's raw similarity (not scaled by the logit scale, not softmaxed), highest first. An invalid
request raises a `ValueError` that says what is wrong. This file checks the request's shape (fields, types, base64);
what a text must hold and what `top_k` may be are checked by the pipeline it serves, which travels with the model.
"""

import base64
import binascii
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import torch
from transformers import pipeline

TASK = "text-video-retrieval"
USAGE = (
    'send {"inputs": {"video": <base64 video>, "texts": [<text>, ...]}} to rank texts, or '
    '{"inputs": {"text": <text>, "videos": [<base64 video>, ...]}} to rank videos'
)


@dataclass
class Request:
    """A validated request.

    Args:
        texts (`list[str]`):
            The texts: those to rank for the video form, the one to rank by for the text form.
        videos (`list[bytes]`):
            The decoded bytes of the videos.
        labels (`list[str]`):
            Name the videos in error messages (`"video"`, `"videos[0]"`, ...).
        rank (`str`):
            `"texts"` for the video form, `"videos"` for the text form.
        top_k (`object`):
            As sent; the pipeline checks it.
    """

    texts: list[str]
    videos: list[bytes]
    labels: list[str]
    rank: str
    top_k: object


def sniff_suffix(data: bytes) -> str:
    """Guess a file suffix for the container format of `data` (PyAV probes the content anyway).

    Args:
        data (`bytes`):
            The video file's bytes.

    Returns:
        `str`: The suffix (`.mp4`, `.webm`, `.ts`, ...); `.mp4` when unknown.
    """
    if data[4:8] == b"ftyp":
        return ".mov" if data[8:10] == b"qt" else ".mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska or WebM
        return ".webm" if b"webm" in data[:64] else ".mkv"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return ".avi"
    if data[:4] == b"GIF8":
        return ".gif"
    if data[:3] == b"FLV":
        return ".flv"
    if data[:4] == b"OggS":
        return ".ogv"
    if data[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return ".mpg"
    if data[:1] == b"G" and data[188:189] == b"G":  # MPEG transport stream: a sync byte every 188 bytes
        return ".ts"
    return ".mp4"


def decode_video(value: Any, label: str) -> bytes:
    """Decode a base64 string (a `data:...;base64,` prefix allowed) into the bytes of a video file.

    Args:
        value (`Any`):
            The string as sent.
        label (`str`):
            Names the value in errors.

    Returns:
        `bytes`: The decoded bytes.

    Raises:
        ValueError: If `value` is not a string, not valid base64, or empty.
    """
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a base64 string of a video file, got {type(value).__name__}.")
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{label} is not valid base64: {error}.") from error
    if not data:
        raise ValueError(f"{label} is empty.")
    return data


def _texts(value: Any, name: str) -> list[str]:
    # Only the type: the pipeline refuses texts without a visible character (`caption_checks`), naming their position.
    if not isinstance(value, list) or not value:
        raise ValueError(f"'{name}' must be a non-empty list of strings.")
    for position, text in enumerate(value):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{position}] must be a string, got {type(text).__name__}.")
    return value


def _top_k(data: dict) -> object:
    """The `top_k` parameter as sent (None when absent); the pipeline checks its value."""
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError("'parameters' must be an object, e.g. {\"top_k\": 5}.")
    unknown = set(parameters) - {"top_k"}
    if unknown:
        raise ValueError(f"Unknown parameters {sorted(unknown)}; the only parameter is 'top_k'.")
    return parameters.get("top_k")


def parse_request(data: Any) -> Request:
    """Validate a request body and decode its videos.

    Args:
        data (`Any`):
            The request body (see the module docstring).

    Returns:
        `Request`: The validated request.

    Raises:
        ValueError: Saying what is wrong with the request.
    """
    if not isinstance(data, dict) or "inputs" not in data:
        raise ValueError(f"The request has no 'inputs': {USAGE}.")
    inputs = data["inputs"]
    if not isinstance(inputs, dict):
        raise ValueError(f"'inputs' must be an object: {USAGE}.")
    has_video, has_videos = "video" in inputs, "videos" in inputs
    if has_video == has_videos:
        which = "both 'video' and 'videos'" if has_video else "neither 'video' nor 'videos'"
        raise ValueError(f"'inputs' has {which}: {USAGE}.")
    top_k = _top_k(data)
    if has_video:
        if "texts" not in inputs:
            raise ValueError("'inputs' with a 'video' needs 'texts', the list of texts to rank.")
        texts = _texts(inputs["texts"], "texts")
        return Request(texts, [decode_video(inputs["video"], "video")], ["video"], "texts", top_k)
    text = inputs.get("text")
    if not isinstance(text, str):
        raise ValueError("'inputs' with 'videos' needs 'text', a string to rank the videos by.")
    videos = inputs["videos"]
    if not isinstance(videos, list) or not videos:
        raise ValueError("'videos' must be a non-empty list of base64 strings.")
    labels = [f"videos[{index}]" for index in range(len(videos))]
    decoded = [decode_video(video, label) for video, label in zip(videos, labels, strict=True)]
    return Request([text], decoded, labels, "videos", top_k)


class EndpointHandler:
    """Loads the model, processor and pipeline from the repository and answers requests.

    Args:
        path (`str`, *optional*, defaults to `""`):
            The repository's folder; the current folder when empty.
    """

    def __init__(self, path: str = ""):
        device = 0 if torch.cuda.is_available() else -1
        self.pipeline = pipeline(TASK, model=path or ".", trust_remote_code=True, device=device)

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Rank texts for a video or videos for a text (see the module docstring).

        Args:
            data (`dict[str, Any]`):
                The request body.

        Returns:
            `list[dict[str, Any]]`: `{"text", "score"}` or `{"index", "score"}` items, highest score first.

        Raises:
            ValueError: Saying what is wrong with the request, or which video could not be decoded.
        """
        request = parse_request(data)
        # Decoded bytes go to files (PyAV reads files); the folder and everything in it go when the call ends.
        with tempfile.TemporaryDirectory(prefix="drl-endpoint-") as folder:
            paths = []
            for index, video in enumerate(request.videos):
                path = os.path.join(folder, f"video_{index}{sniff_suffix(video)}")
                with open(path, "wb") as file:
                    file.write(video)
                paths.append(path)
            try:
                if request.rank == "texts":
                    ranked = self.pipeline(texts=request.texts, videos=paths[0], rank="texts", top_k=request.top_k)
                    return [{"text": item["text"], "score": item["score"]} for item in ranked]
                ranked = self.pipeline(request.texts[0], videos=paths, rank="videos", top_k=request.top_k)
                return [{"index": item["index"], "score": item["score"]} for item in ranked]
            except ValueError as error:
                # Errors name the temporary files (the VideoReadError's source, FFmpeg's own messages): a caller
                # only knows the request's fields, and the server's paths are none of their business.
                source = getattr(error, "source", None)
                if source in paths:
                    label = request.labels[paths.index(source)]
                    message = f"{label} could not be decoded as a video: {getattr(error, 'reason', str(error))}"
                else:
                    message = str(error)
                for path, label in zip(paths, request.labels, strict=True):
                    message = message.replace(path, label)
                message = message.replace(folder, "<upload>")
                if message == str(error):
                    raise
                raise ValueError(message) from None

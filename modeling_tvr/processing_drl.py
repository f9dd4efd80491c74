"""DRLProcessor: captions in the authors' token layout plus videos through DRLVideoProcessor, in one call."""

import os

import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.video_processing_utils import VideoProcessorMixin

from .caption_checks import check_captions
from .tokenization_drl import DRLCLIPTokenizer
from .video_processing_drl import DRLVideoProcessor

# The authors pad captions with id 0 after the end token; the text tower is causal, so padding never reaches the
# valid positions.
PAD_ID = 0
# Keyword arguments of `from_pretrained` that say where files come from, passed to every part's loader.
_HUB_OPTIONS = (
    "cache_dir",
    "force_download",
    "local_files_only",
    "proxies",
    "revision",
    "subfolder",
    "token",
)
# Options of this class that `processor_config.json` holds (beside the parts' own configs).
_SAVED_OPTIONS = ("max_words",)


def _checked_max_words(max_words: int) -> int:
    """`max_words` as an int, refused when it leaves no room for the start and end tokens and one word."""
    if isinstance(max_words, bool) or int(max_words) != max_words or max_words < 3:
        raise ValueError(f"max_words must leave room for the start and end tokens and one word, got {max_words!r}.")
    return int(max_words)


class DRLProcessor(ProcessorMixin):
    """Pairs a CLIP tokenizer with a [`DRLVideoProcessor`] so that `model(**processor(text=..., videos=...))` works.

    Captions follow the authors' layout: `<|startoftext|>`, the BPE tokens cut to `max_words - 2`,
    `<|endoftext|>`, then id 0 up to `max_words`; `attention_mask` covers start to end token. A caption without a
    visible character (empty, whitespace or control characters only; `caption_checks`) is an error that names its
    position, since it would be encoded as start + end tokens only and match everything equally.

    Args:
        video_processor ([`DRLVideoProcessor`], *optional*):
            The video side.
        tokenizer ([`DRLCLIPTokenizer`] or another CLIP tokenizer, *optional*):
            The text side.
        max_words (`int`, *optional*, defaults to `32`):
            Caption length in tokens, start and end tokens included.

    Raises:
        ValueError: If `max_words` leaves no room for the start and end tokens and one word.
    """

    def __init__(self, video_processor=None, tokenizer=None, max_words: int = 32, **kwargs):
        self.max_words = _checked_max_words(max_words)
        super().__init__(video_processor, tokenizer, **kwargs)

    @classmethod
    def for_model(cls, config, tokenizer, **video_options) -> "DRLProcessor":
        """Build the processor a model with `config` expects.

        Frames are resized and cropped to the vision tower's `image_size`, `max_frames` frames and `max_words` tokens
        come from the config, and the normalisation is CLIP's.

        Args:
            config ([`DRLConfig`]):
                The model's configuration.
            tokenizer ([`DRLCLIPTokenizer`] or another CLIP tokenizer):
                The text side.
            **video_options:
                Further [`DRLVideoProcessor`] arguments (`video_framerate`, `decode_strategy`, ...).

        Returns:
            [`DRLProcessor`]: The processor.
        """
        size = config.vision_config.image_size
        video_processor = DRLVideoProcessor(
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
            max_frames=config.max_frames,
            **video_options,
        )
        return cls(video_processor=video_processor, tokenizer=tokenizer, max_words=config.max_words)

    def check_argument_for_proper_class(self, argument_name, argument):
        # The base check resolves video processors through transformers' video-processor registry, which is a
        # placeholder without torchvision; any VideoProcessorMixin is accepted instead.
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"video_processor must be a video processor, got {type(argument).__name__}.")
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "DRLProcessor":
        """Load a processor saved with `save_pretrained` (a local folder or a Hub repository).

        Both parts are built with this module's own classes, never through transformers' Auto* lookups: those need
        torchvision for video processors, and since transformers 5.25 they also ask for `trust_remote_code` on the
        parts' `auto_map` although the classes are already imported. Loading through
        `AutoProcessor.from_pretrained(..., trust_remote_code=True)` lands here too (in the folder's copy of this file).

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`):
                The folder or Hub repository id.
            **kwargs:
                Hub options (`revision`, `cache_dir`, `token`, `local_files_only`, ...), a ready `video_processor` or
                `tokenizer` to use instead of the saved one, or `max_words` to override the saved one; the Auto*
                loaders' own arguments are accepted and ignored.

        Returns:
            [`DRLProcessor`]: The processor.
        """
        kwargs.pop("trust_remote_code", None)  # nothing here runs code other than this module's
        hub_options = {name: kwargs.pop(name) for name in _HUB_OPTIONS if name in kwargs}
        video_processor = kwargs.pop("video_processor", None)
        if video_processor is None:
            video_processor = DRLVideoProcessor.from_pretrained(pretrained_model_name_or_path, **hub_options)
        tokenizer = kwargs.pop("tokenizer", None)
        if tokenizer is None:
            tokenizer = DRLCLIPTokenizer.from_pretrained(pretrained_model_name_or_path, **hub_options)
        processor_dict, _ = cls.get_processor_dict(pretrained_model_name_or_path, **hub_options)
        options = {key: value for key, value in processor_dict.items() if key in _SAVED_OPTIONS}
        # The rest are the Auto* loaders' and pipeline's own arguments (`_from_auto`, `code_revision`, ...), which
        # differ between transformers releases and mean nothing to this class.
        options.update({key: value for key, value in kwargs.items() if key in _SAVED_OPTIONS})
        return cls(video_processor=video_processor, tokenizer=tokenizer, **options)

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs):
        """Saves the processor, and the video processor on its own too (`video_preprocessor_config.json`)."""
        saved = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        self.video_processor.save_pretrained(save_directory)
        return saved

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values_videos", "video_mask"]

    def encode_captions(self, text: str | list[str], max_words: int | None = None) -> dict[str, torch.Tensor]:
        """Encode captions in the authors' layout (see the class docstring).

        Args:
            text (`str` or `list[str]`):
                A caption or a list of captions.
            max_words (`int`, *optional*):
                Caption length in tokens; the processor's `max_words` when `None`.

        Returns:
            `dict[str, torch.Tensor]`: `input_ids` and `attention_mask`, each `[batch, max_words]`.

        Raises:
            TypeError: If `text` is not a string or a list of strings, or a caption is not a string.
            ValueError: If there is no caption, a caption has no visible character, or `max_words` leaves no room
                for the start and end tokens and one word.
        """
        max_words = self.max_words if max_words is None else _checked_max_words(max_words)
        if not isinstance(text, (str, list, tuple)):
            raise TypeError(f"text must be a string or a list of strings, got {type(text).__name__}.")
        captions = [text] if isinstance(text, str) else list(text)
        if not captions:
            raise ValueError("No captions given.")
        check_captions(captions)
        tokenizer = self.tokenizer
        # Cut to `max_words` below on purpose; `verbose=False` skips the tokenizer's warning about sequences longer
        # than the model's, which would say otherwise.
        pieces = tokenizer(captions, add_special_tokens=False, verbose=False)["input_ids"]
        input_ids = torch.full((len(captions), max_words), PAD_ID, dtype=torch.long)
        attention_mask = torch.zeros((len(captions), max_words), dtype=torch.long)
        for row, tokens in enumerate(pieces):
            ids = [tokenizer.bos_token_id, *tokens[: max_words - 2], tokenizer.eos_token_id]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def __call__(
        self, text=None, videos=None, return_tensors: str | None = "pt", max_words: int | None = None, **kwargs
    ):
        """Encode captions, videos or both for the model.

        Args:
            text (`str` or `list[str]`, *optional*):
                A caption or a list of captions.
            videos (`str`, `os.PathLike`, `tuple`, `np.ndarray` or a list of them, *optional*):
                A video or a list of videos (paths, `(path, start_s, end_s)` segments, uint8 arrays).
            return_tensors (`str`, *optional*, defaults to `"pt"`):
                `"pt"` for torch tensors.
            max_words (`int`, *optional*):
                Caption length for this call; the processor's when `None`.
            **kwargs:
                Per-call video options (e.g. `max_frames=64`).

        Returns:
            `BatchFeature`: With `input_ids` and `attention_mask` when `text` is given, and `pixel_values_videos` and
            `video_mask` when `videos` are given.

        Raises:
            ValueError: If neither `text` nor `videos` is given.
        """
        if text is None and videos is None:
            raise ValueError("Give text, videos or both.")
        data = {}
        if text is not None:
            data.update(self.encode_captions(text, max_words))
        if videos is not None:
            data.update(self.video_processor(videos, return_tensors=None, **kwargs))
        return BatchFeature(data=data, tensor_type=return_tensors)


__all__ = ["DRLProcessor"]

"""Whether a caption can be encoded: one rule for the processor, the pipeline, the endpoint and the benchmark builders.

This file travels with saved checkpoints (the processor and the pipeline import it, so both a model folder and a
processor folder carry it) and imports only the standard library. The Inference Endpoints handler reaches it through
the pipeline it loads from the repository.
"""

import unicodedata
from collections.abc import Sequence


def caption_problem(caption: object) -> str | None:
    """What is wrong with `caption` as a text to encode, or None when it is a usable caption.

    A caption must be a string holding at least one visible character: not empty, not only whitespace, and not only
    control or invisible format characters (which OpenAI's clean-up turns into nothing or into a token of junk).

    Args:
        caption (`object`):
            The value to check.

    Returns:
        `str` or `None`: The problem, worded to follow the caption's name ("is empty", ...), or `None`.
    """
    if not isinstance(caption, str):
        return f"is a {type(caption).__name__}, not a string"
    if not caption:
        return "is empty"
    if caption.isspace():
        return "holds only whitespace"
    if all(unicodedata.category(character)[0] in "CZ" for character in caption):
        return "holds only control or invisible characters"
    return None


def check_captions(captions: Sequence[object], label: str = "Caption {}") -> None:
    """Refuse the first caption that `caption_problem` finds wrong.

    Args:
        captions (`Sequence[object]`):
            The captions to check.
        label (`str`, *optional*, defaults to `"Caption {}"`):
            Names a caption in the message as `label.format(position)` (e.g. `"texts[{}]"`).

    Raises:
        TypeError: If a caption is not a string.
        ValueError: If a string holds no visible character.
    """
    for position, caption in enumerate(captions):
        problem = caption_problem(caption)
        if problem is not None:
            error = ValueError if isinstance(caption, str) else TypeError
            raise error(f"{label.format(position)} {problem}; every text needs at least one word.")

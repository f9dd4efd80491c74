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
    """
    Raises `TypeError` for the first caption that is not a string and `ValueError` for the first string that
    `caption_problem` refuses; `label.format(position)` names the caption in the message (e.g. "texts[{}]").
    """
    for position, caption in enumerate(captions):
        problem = caption_problem(caption)
        if problem is not None:
            error = ValueError if isinstance(caption, str) else TypeError
            raise error(f"{label.format(position)} {problem}; every text needs at least one word.")

"""Whether a caption can be encoded: one rule for the processor, the pipeline, the endpoint and the benchmark builders.

This file travels with saved checkpoints (the processor imports it) and imports only the standard library.
"""

import unicodedata


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

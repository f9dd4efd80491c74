"""Stand-in for transformers' `tests/generation/test_utils.py`, which the sdist does not ship.

`ModelTesterMixin` only checks that a test class inherits `GenerationTesterMixin` exactly when its model can
`generate`; DRL is a retrieval model that cannot, so the class is never inherited and needs no tests.
"""


class GenerationTesterMixin:
    """Marker for test classes of models that can `generate` (DRL cannot)."""

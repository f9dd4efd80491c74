"""Stand-in for transformers' `tests/exporters/test_export.py`, which the sdist does not ship.

`ModelTesterMixin` inherits `ExportTesterMixin`; upstream, its tests (torch.export, ONNX and ExecuTorch exports of
the whole forward) are all marked `@slow` and do not run in transformers' default test run either. This project's
own `tests/test_compile_export.py` exports `get_text_features` / `get_video_features` with `torch.export` and
compiles the training step with `fullgraph=True`, comparing both with eager numbers.
"""


class ExportTesterMixin:
    """No export tests here: see the module docstring for where this project tests export."""

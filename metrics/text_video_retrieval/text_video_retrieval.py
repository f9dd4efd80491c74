# Copyright 2025 The modeling-tvr authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Text-video retrieval metric (R@1/5/10, median and mean rank, both directions) for `evaluate`."""

# evaluate scans this file line by line for its dependencies: keep ONE import per line. The `# From:` comment only
# changes evaluate's install hint to the pip name (`pip install modeling-tvr`); the import itself is a plain import.
import datasets
import evaluate
import numpy as np
import torch

from modeling_tvr.training.metrics import dual_softmax as _dual_softmax  # From: modeling-tvr
from modeling_tvr.training.metrics import retrieval_metrics  # From: modeling-tvr

_CITATION = """\
@article{wang2022disentangled,
  title={Disentangled Representation Learning for Text-Video Retrieval},
  author={Wang, Qiang and Zhang, Yanhao and Zheng, Yun and Pan, Pan and Hua, Xian-Sheng},
  journal={arXiv preprint arXiv:2203.07111},
  year={2022}
}
"""

_DESCRIPTION = """\
Standard text-video retrieval metrics, computed by the same function the `modeling-tvr` package uses in
training and evaluation (`modeling_tvr.training.metrics.retrieval_metrics`).

Each text query contributes one row of similarity scores against all candidate videos, and the index of the
video it describes. The rows are stacked into a `[num_texts, num_videos]` similarity matrix, from which the
metric reports, for text-to-video (t2v) and video-to-text (v2t) retrieval: recall at 1, 5 and 10 (percent),
median rank (MdR) and mean rank (MnR).

Ranks are 1-based: rank = 1 + the number of OTHER candidates scoring at least as high as the correct one, so
ties never flatter the model. Several captions may describe the same video: each caption is a t2v query, and
for v2t a video scores each caption group (all captions of one video) by its best caption. Videos without any
caption are not v2t queries.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): for each text query, its similarity scores against ALL videos
        (higher is better). Every row must have the same length, `num_videos`. Stored as float32.
    references (`list` of `int`): for each text query, the index (0-based, in `[0, num_videos)`) of the video
        it describes. Several texts may point at the same video.
    dual_softmax (`bool`, defaults to `False`): re-weight the similarity matrix with dual softmax (DSL) before
        ranking, as `modeling_tvr.training.metrics.dual_softmax` does. The softmax runs over ALL texts of the
        evaluation, so pass the complete set of queries.
    dual_softmax_temperature (`float`, defaults to `100.0`): the dual softmax temperature.

Returns:
    A flat `dict` of floats:
        `t2v_R@1`, `t2v_R@5`, `t2v_R@10` (percent), `t2v_MdR`, `t2v_MnR` (1-based ranks),
        `v2t_R@1`, `v2t_R@5`, `v2t_R@10`, `v2t_MdR`, `v2t_MnR`.

Examples:

    >>> metric = evaluate.load("metrics/text_video_retrieval")
    >>> results = metric.compute(
    ...     predictions=[[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.7, 0.1, 0.3], [0.3, 0.2, 0.4]],
    ...     references=[0, 1, 2, 2],
    ... )
    >>> results["t2v_R@1"], results["t2v_MdR"], results["v2t_R@1"]
    (75.0, 1.0, 100.0)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TextVideoRetrieval(evaluate.Metric):
    """Text-video retrieval R@K / MdR / MnR in both directions, computed by `modeling_tvr.training.metrics`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Value("int64"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2203.07111", "https://github.com/foolwood/DRL"],
        )

    def _compute(
        self,
        predictions: list[list[float]],
        references: list[int],
        dual_softmax: bool = False,
        dual_softmax_temperature: float = 100.0,
    ) -> dict[str, float]:
        if len(predictions) == 0:
            raise ValueError("text_video_retrieval needs at least one text query.")
        lengths = {len(row) for row in predictions}
        if len(lengths) != 1:
            raise ValueError(
                "Every prediction must hold one score per video, with the same number of videos for every text; "
                f"got rows of lengths {sorted(lengths)}."
            )
        similarity = torch.from_numpy(np.asarray(predictions, dtype=np.float32).reshape(len(predictions), -1))
        text_to_video = torch.as_tensor(np.asarray(references, dtype=np.int64))
        if dual_softmax:
            similarity = _dual_softmax(similarity, temperature=dual_softmax_temperature)
        metrics = retrieval_metrics(similarity, text_to_video)
        return {f"{direction}_{name}": value for direction, values in metrics.items() for name, value in values.items()}

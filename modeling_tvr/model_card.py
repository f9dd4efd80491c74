"""Model cards for trained DRL folders: metadata, usage and the measured results (`model-index`)."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = Path(__file__).resolve().parents[1] / "MODEL_CARD.md"
TASK = "text-video-retrieval"


def eval_results(metrics: dict[str, dict[str, float]], benchmark: str, split: str) -> list[EvalResult]:
    """`model-index` entries for `retrieval_metrics` output: one per direction and metric."""
    return [
        EvalResult(
            task_type=TASK,
            task_name="Text-video retrieval",
            dataset_type=benchmark,
            dataset_name=benchmark,
            dataset_split=split,
            metric_type=f"{direction}_{name}".lower().replace("@", "_at_"),
            metric_name=f"{direction} {name}",
            metric_value=round(value, 2),
        )
        for direction, values in metrics.items()
        for name, value in values.items()
    ]


def results_table(results: list[EvalResult]) -> str:
    """A markdown table of the card's results, one row per dataset split and direction."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for result in results:
        direction, name = (result.metric_name or result.metric_type).split(" ", 1)
        rows.setdefault((result.dataset_name, result.dataset_split or "", direction), {})[name] = result.metric_value
    columns = ["R@1", "R@5", "R@10", "MdR", "MnR"]
    lines = ["| dataset | split | direction | " + " | ".join(columns) + " |", "| --- | --- | --- |" + " --- |" * 5]
    for (dataset, split, direction), values in rows.items():
        cells = " | ".join(str(values.get(column, "")) for column in columns)
        lines.append(f"| {dataset} | {split} | {direction} | {cells} |")
    return "\n".join(lines)


def write_model_card(
    folder: str | Path,
    config,
    metrics: dict[str, dict[str, float]] | None,
    benchmark: str,
    split: str,
    selection: str,
    video_processor,
    repo_id: str | None = None,
    base_model: str | None = None,
) -> ModelCard:
    """
    Writes `README.md` into `folder`: the card's metadata (library, pipeline tag, tags, datasets, `model-index`),
    usage, results and citation. Results of an existing card are kept and the new ones added (same dataset, split
    and metric: replaced), so evaluating a checkpoint on another benchmark appends to its card.
    """
    folder = Path(folder)
    results = eval_results(metrics, benchmark, split) if metrics else []
    previous = folder / "README.md"
    if previous.is_file():
        kept = ModelCard.load(previous).data.eval_results or []
        new_ids = {(r.dataset_name, r.dataset_split, r.metric_type) for r in results}
        results = [r for r in kept if (r.dataset_name, r.dataset_split, r.metric_type) not in new_ids] + results
    model_name = repo_id.split("/")[-1] if repo_id else folder.name
    datasets = sorted({r.dataset_name for r in results}) or [benchmark]
    card_data = ModelCardData(
        library_name="transformers",
        tags=["text-video-retrieval", "video", "clip", "drl"],
        datasets=datasets,
        license="apache-2.0",
        base_model=base_model,
        model_name=model_name,
        eval_results=results or None,
    )
    crop = video_processor.crop_size
    if not TEMPLATE.is_file():
        raise FileNotFoundError(f"Model card template {TEMPLATE} is missing (it ships in the repository's root).")
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id or str(folder),
        interaction=config.interaction,
        wti_arch=config.wti_arch,
        temporal_module=config.temporal_module,
        cdcr=config.cdcr,
        max_words=config.max_words,
        max_frames=video_processor.max_frames,
        video_framerate=video_processor.video_framerate,
        image_size=f"{crop['height']}x{crop['width']}",
        benchmark=benchmark,
        base_model=base_model,
        selection=selection,
        results_table=results_table(results) if results else "No evaluation recorded yet.",
    )
    card.save(previous)
    return card

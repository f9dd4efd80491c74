"""Model cards for trained DRL folders: metadata, usage and the measured results (`model-index`)."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = Path(__file__).resolve().parent / "model_card_template.md"
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


def conversion_source(conversion: dict) -> str:
    """The card's line on where converted weights come from, given the `conversion.json` of a converted folder."""
    name = Path(conversion["checkpoint"]).name
    if conversion.get("kind") == "drl":
        return f"converted from the authors' DRL checkpoint `{name}` with `hub_scripts/convert_official_checkpoint.py`"
    modules = ", ".join(conversion.get("initialised") or []) or "none"
    return (
        f"OpenAI CLIP `{name}` converted with `hub_scripts/convert_official_checkpoint.py`; the DRL modules "
        f"({modules}) are initialised as the authors do before fine-tuning (temporal module from the text tower, "
        "WTI heads random), so fine-tune before using it for retrieval"
    )


def build_model_card(
    folder: str | Path,
    config,
    metrics: dict[str, dict[str, float]] | None,
    benchmark: str | None,
    split: str | None,
    selection: str | None,
    video_processor,
    repo_id: str | None = None,
    base_model: str | None = None,
    source: str | None = None,
) -> ModelCard:
    """
    The card of a DRL folder, rendered from `model_card_template.md` (beside this module): metadata (library,
    `pipeline_tag`, tags, datasets, base model, `model-index`), description, usage (model, processor and pipeline),
    results, limitations and citation. Results of the folder's existing `README.md` are kept and `metrics` (output
    of `retrieval_metrics`, measured on `benchmark` / `split`) added; a result for the same dataset, split and
    metric is replaced. `benchmark` None: the training data is unknown (e.g. a CLIP not fine-tuned yet). `source`:
    where the weights come from when they were converted rather than trained here.
    """
    folder = Path(folder)
    results = eval_results(metrics, benchmark or "unknown", split or "test") if metrics else []
    previous = folder / "README.md"
    if previous.is_file():
        kept = ModelCard.load(previous).data.eval_results or []
        new_ids = {(r.dataset_name, r.dataset_split, r.metric_type) for r in results}
        results = [r for r in kept if (r.dataset_name, r.dataset_split, r.metric_type) not in new_ids] + results
    model_name = repo_id.split("/")[-1] if repo_id else folder.name
    datasets = sorted({r.dataset_name for r in results}) or ([benchmark] if benchmark else None)
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=TASK,
        tags=["text-video-retrieval", "video", "clip", "drl"],
        datasets=datasets,
        license="apache-2.0",
        base_model=base_model,
        model_name=model_name,
        eval_results=results or None,
    )
    crop = video_processor.crop_size
    if not TEMPLATE.is_file():
        raise FileNotFoundError(
            f"Model card template {TEMPLATE} is missing: it ships inside the modeling-tvr package; reinstall it."
        )
    return ModelCard.from_template(
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
        source=source,
        selection=selection,
        results_table=results_table(results) if results else "No evaluation recorded yet.",
    )


def write_model_card(folder: str | Path, *args, **kwargs) -> ModelCard:
    """Writes `build_model_card(folder, ...)` (same arguments) to `folder/README.md` and returns it."""
    card = build_model_card(folder, *args, **kwargs)
    card.save(Path(folder) / "README.md")
    return card

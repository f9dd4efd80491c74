"""Push a trained or converted DRL folder (weights, config, code, processor, pipeline, card) to a Hub model repo.

    python hub_scripts/push_to_hub.py outputs/drl-msrvtt --repo_id someone/drl-msrvtt
    python hub_scripts/push_to_hub.py outputs/drl-msrvtt --repo_id someone/drl-msrvtt --private --revision v1 \\
        --commit_message "MSR-VTT, 5 epochs"
    python hub_scripts/push_to_hub.py outputs/drl-msrvtt --repo_id someone/drl-msrvtt --dry_run   # no network

Before anything is sent, the folder is checked to be a loadable DRL checkpoint (config with `model_type: drl`,
`model.safetensors` fitting it and holding no NaN or infinity, processor and tokenizer files, the code files its
`auto_map` / `custom_pipelines` name and their sibling imports); what is missing or wrong is named. The card
(`README.md`) is regenerated from the package's model-card template (`MODEL_CARD.md`) with the folder's measured
results (`metrics.json` written by `train.py`, plus those already in the folder's card) and its provenance
(`conversion.json` of a converted folder). The Inference Endpoints `handler.py` and its `requirements.txt` are added,
so the repository deploys as it is.
Training checkpoints, logs and caches stay behind (`IGNORE_PATTERNS`), and so do code files nothing in the folder
imports (`stale_code`: left by a save from an older version), named in a warning.

What is sent is staged in a temporary folder first, so a failed upload (offline, no network, no permission) adds
nothing to the model folder and ends with one line naming the repo and the cause; once the upload succeeded, the
folder gets the same card and endpoint files as the repo.
"""

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from modeling_tvr import DRLConfig, DRLModel, DRLVideoProcessor
from modeling_tvr.training.finite import describe_tensors, nonfinite_tensors
from modeling_tvr.training.model_card import build_model_card, conversion_source

logger = logging.getLogger(__name__)

# Resumable training state (`checkpoints/`), TensorBoard logs, the BPE vocabulary learned for training (the tokenizer
# files hold it), Python caches.
IGNORE_PATTERNS = (
    "checkpoints/*",
    "runs/*",
    "*events.out.tfevents*",
    "bpe_vocab.txt.gz",
    "__pycache__/*",
    "*/__pycache__/*",
    "*.pyc",
    ".tmp-*",
)
PROCESSOR_FILES = ("processor_config.json", "video_preprocessor_config.json", "tokenizer_config.json")
_RELATIVE_IMPORT = re.compile(r"^\s*from \.(\w+) import", re.MULTILINE)


# Inference Endpoints run a repository's `handler.py` with its `requirements.txt` installed: pushing them makes every
# checkpoint deployable as it is. The model's own code arrives through trust_remote_code; only its third-party
# imports are listed.
HANDLER_SOURCE = Path(__file__).resolve().with_name("handler.py")
ENDPOINT_REQUIREMENTS = "av>=12\nftfy>=6\nregex\n"


def add_endpoint_files(folder: Path) -> list[str]:
    """Write `handler.py` and `requirements.txt` into `folder` where missing.

    Args:
        folder (`Path`):
            The model folder.

    Returns:
        `list[str]`: The names written.
    """
    written = []
    if not (folder / "handler.py").is_file():
        (folder / "handler.py").write_text(HANDLER_SOURCE.read_text())
        written.append("handler.py")
    if not (folder / "requirements.txt").is_file():
        (folder / "requirements.txt").write_text(ENDPOINT_REQUIREMENTS)
        written.append("requirements.txt")
    return written


class CheckpointFolderError(ValueError):
    """The folder is not a loadable DRL checkpoint; the message names what is missing or wrong."""


class HubUploadError(RuntimeError):
    """The upload failed; the message, one line, names the repo and the cause (offline, network, refused)."""


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _code_modules(folder: Path) -> set[str]:
    """Modules (`name` of `name.py`) that the folder's configs point remote code at."""
    references: list[str] = []
    for name in ("config.json", *PROCESSOR_FILES):
        data = _read_json(folder / name) or {}
        for nested in (data, data.get("video_processor") or {}):
            for value in (nested.get("auto_map") or {}).values():
                references += value if isinstance(value, list) else [value]
        for pipeline in (data.get("custom_pipelines") or {}).values():
            references.append(pipeline.get("impl"))
    # "repo--module.Class" points at another repository's code; None is an absent slow/fast tokenizer class.
    return {ref.rsplit(".", 1)[0] for ref in references if isinstance(ref, str) and "--" not in ref}


def _needed_code(folder: Path) -> tuple[set[str], list[str]]:
    """The code files the configs need, with the sibling modules those files import: `(present, missing)` names."""
    present, missing, seen, queue = set(), [], set(), sorted(_code_modules(folder))
    while queue:
        module = queue.pop()
        if module in seen:
            continue
        seen.add(module)
        path = folder / f"{module}.py"
        if not path.is_file():
            missing.append(path.name)
            continue
        present.add(path.name)
        queue += _RELATIVE_IMPORT.findall(path.read_text())
    return present, sorted(missing)


def _missing_code(folder: Path) -> list[str]:
    """Code files the configs need, and sibling modules those files import, that the folder lacks."""
    return _needed_code(folder)[1]


def stale_code(folder: str | Path) -> list[str]:
    """List the Python files at the top of `folder` that neither the configs nor the code they name reach.

    The endpoint's `handler.py` is not one of them. Such files are typically left by a save from an older version of
    this package (`save_pretrained` adds files, never removes them). Nothing would import them on the Hub, so the
    upload leaves them out and says which.

    Args:
        folder (`str` or `Path`):
            The model folder.

    Returns:
        `list[str]`: The file names, sorted.
    """
    folder = Path(folder)
    reached = _needed_code(folder)[0] | {HANDLER_SOURCE.name}
    return sorted(path.name for path in folder.glob("*.py") if path.name not in reached)


def _weight_shards(folder: Path) -> list[str]:
    """`model.safetensors`, or the shards its index names."""
    index = _read_json(folder / "model.safetensors.index.json")
    return sorted(set(index["weight_map"].values())) if index else ["model.safetensors"]


def nonfinite_weights(folder: str | Path) -> list[str]:
    """Name the tensors of the folder's weights that hold a NaN or an infinity (a diverged training run).

    Args:
        folder (`str` or `Path`):
            The model folder.

    Returns:
        `list[str]`: The tensors' names.

    Raises:
        CheckpointFolderError: If a weights file is missing or not a readable safetensors file.
    """
    from safetensors.torch import load_file

    bad = []
    for shard in _weight_shards(Path(folder)):
        try:
            tensors = load_file(Path(folder) / shard)
        except Exception as error:  # a missing, truncated or foreign file
            raise CheckpointFolderError(f"{shard} is not a readable safetensors file ({error})") from error
        bad += nonfinite_tensors(tensors)
    return bad


def _nonfinite_problem(names: list[str]) -> str:
    return (
        f"the weights hold NaN or infinite values in {describe_tensors(names)} (a diverged training run: retrain "
        "with a lower --lr)"
    )


def _weights_problems(folder: Path) -> list[str]:
    """Check the keys and shapes of `model.safetensors` (or its shards) against a model built from `config.json`.

    Then check that every weight is finite.
    """
    from safetensors import safe_open

    try:
        config = DRLConfig.from_pretrained(folder)
    except Exception as error:  # any reason the config does not load is reported as such
        return [f"config.json does not load as a DRLConfig ({error})"]
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        expected = {key: tuple(value.shape) for key, value in DRLModel(config).state_dict().items()}
    found: dict[str, tuple] = {}
    for shard in _weight_shards(folder):
        try:
            with safe_open(folder / shard, framework="pt") as handle:
                names = handle.keys()  # a safe_open handle is not iterable itself
                found.update({key: tuple(handle.get_slice(key).get_shape()) for key in names})
        except Exception as error:  # a truncated or foreign file
            return [f"{shard} is not a readable safetensors file ({error})"]
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{key} {found[key]} vs {shape}" for key, shape in expected.items() if key in found and found[key] != shape
    ]
    if missing or unexpected or wrong:
        return [
            f"the weights do not fit config.json: missing {missing[:10]}, unexpected {unexpected[:10]}, "
            f"wrong shapes {wrong[:10]}"
        ]
    bad = nonfinite_weights(folder)
    return [_nonfinite_problem(bad)] if bad else []


def check_folder(folder: str | Path) -> list[str]:
    """Say what keeps `folder` from being a loadable DRL checkpoint: config, weights, processor, tokenizer, code files.

    Args:
        folder (`str` or `Path`):
            The model folder.

    Returns:
        `list[str]`: One line per problem; empty when the folder is a loadable checkpoint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems = []
    config = _read_json(folder / "config.json")
    if config is None:
        problems.append("config.json (the model configuration) is missing or not JSON")
    elif config.get("model_type") != "drl":
        problems.append(f"config.json has model_type {config.get('model_type')!r}, not 'drl'")
    has_weights = (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
    if not has_weights:
        hint = (
            " (pytorch_model.bin found: re-save with save_pretrained)"
            if (folder / "pytorch_model.bin").is_file()
            else ""
        )
        problems.append(f"model.safetensors (the weights) is missing{hint}")
    for name in PROCESSOR_FILES:
        if not (folder / name).is_file():
            problems.append(f"{name} (the processor; save it with processor.save_pretrained) is missing")
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.json").is_file():
        problems.append("tokenizer.json (the tokenizer) is missing")
    problems += [
        f"{name} (code named by the configs, needed by trust_remote_code) is missing" for name in _missing_code(folder)
    ]
    if not problems:
        problems += _weights_problems(folder)
    return problems


def regenerate_card(folder: str | Path, repo_id: str) -> ModelCard:
    """Rebuild the folder's card from the model-card template for `repo_id`.

    Results and settings come from `metrics.json`, provenance from `conversion.json`, and results and base model
    already in the folder's card are kept.

    Args:
        folder (`str` or `Path`):
            The model folder.
        repo_id (`str`):
            The model repository the card is for.

    Returns:
        `ModelCard`: The card.
    """
    folder = Path(folder)
    config = DRLConfig.from_pretrained(folder)
    video_processor = DRLVideoProcessor.from_pretrained(folder)
    metrics = benchmark = split = selection = base_model = source = None
    run = _read_json(folder / "metrics.json")
    if run:
        metrics, benchmark, split, selection = (
            run.get("metrics"),
            run.get("benchmark"),
            run.get("split"),
            run.get("selection"),
        )
        clip = (run.get("arguments") or {}).get("clip")
        base_model = clip if clip and not Path(clip).exists() else None  # a Hub id, not a local path
    conversion = _read_json(folder / "conversion.json")
    if conversion:
        source = conversion_source(conversion)
        benchmark = benchmark or conversion.get("benchmark")
        base_model = base_model or conversion.get("base_model")
    if (folder / "README.md").is_file():
        previous = ModelCard.load(folder / "README.md").data
        base_model = base_model or previous.base_model
        benchmark = benchmark or (", ".join(previous.datasets) if previous.datasets else None)
    return build_model_card(
        folder, config, metrics, benchmark, split, selection, video_processor, repo_id, base_model, source
    )


def _ignore_patterns(folder: Path) -> list[str]:
    """What the upload leaves out: `IGNORE_PATTERNS` and the folder's stale code files (logged by name)."""
    stale = stale_code(folder)
    if stale:
        logger.warning(
            "Not uploading %s: no config or code file in %s imports them (left by an older save?).",
            ", ".join(stale),
            folder,
        )
    return [*IGNORE_PATTERNS, *stale]


def files_to_upload(folder: str | Path) -> list[tuple[str, int]]:
    """List every file `upload_checkpoint` sends, filtered exactly as `HfApi.upload_folder` filters them.

    Args:
        folder (`str` or `Path`):
            The model folder.

    Returns:
        `list[tuple[str, int]]`: `(path, bytes)` of each file.
    """
    folder = Path(folder)
    files = {path.relative_to(folder).as_posix(): path for path in sorted(folder.glob("**/*")) if path.is_file()}
    kept = filter_repo_objects(files, ignore_patterns=[*_ignore_patterns(folder), *DEFAULT_IGNORE_PATTERNS])
    return [(name, files[name].stat().st_size) for name in kept]


def _failure_cause(error: Exception) -> str:
    """Why an upload failed, in words a user can act on."""
    reason = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, so nothing may reach the Hub; unset it (and check the network) to upload"
    if isinstance(error, LocalTokenNotFoundError):
        return "no Hub token; log in with `hf auth login`, or pass --token or set HF_TOKEN"
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        hint = " (log in with `hf auth login` or pass a --token with write access)" if status in (401, 403) else ""
        return f"the Hub refused it: {reason}{hint}"
    # The HTTP client's transport errors are not OSErrors; their class names say what they are.
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, OSError) or names & {"TransportError", "NetworkError", "TimeoutException", "RequestError"}:
        return f"the Hub cannot be reached over the network ({type(error).__name__}: {reason}); check the connection"
    return f"{type(error).__name__}: {reason}"


def _upload(
    folder: Path,
    repo_id: str,
    ignore_patterns: list[str],
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
):
    """The Hub calls: the repo and branch when missing, then the folder. Raises `HubUploadError` (one line)."""
    api = HfApi(token=token)
    try:
        # private=None leaves an existing repo's visibility (and a new one's default) alone.
        api.create_repo(repo_id, repo_type="model", private=True if private else None, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            revision=revision,
            commit_message=commit_message or "Upload DRL text-video retrieval model",
            ignore_patterns=ignore_patterns,
        )
    except Exception as error:  # whatever the Hub client raised: one line with the repo and the cause
        raise HubUploadError(f"could not upload to {repo_id}: {_failure_cause(error)}") from error


def upload_checkpoint(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
):
    """Upload `folder` as it is (minus `IGNORE_PATTERNS` and `stale_code`) to the model repo `repo_id`.

    The repo and the branch `revision` are created when missing. Shared with `train.py --push_to_hub`.

    Args:
        folder (`str` or `Path`):
            The model folder.
        repo_id (`str`):
            The model repository.
        private (`bool`, *optional*, defaults to `False`):
            Whether to create the repo private; `False` leaves an existing repo's visibility alone.
        revision (`str`, *optional*):
            The branch to push to.
        commit_message (`str`, *optional*):
            The commit message; a default one when `None`.
        token (`str`, *optional*):
            The Hub token; `HF_TOKEN` or the saved login when `None`.

    Returns:
        `CommitInfo`: The commit info of `HfApi.upload_folder`.

    Raises:
        CheckpointFolderError: If the weights hold a NaN or infinity, or do not read; nothing is sent.
        HubUploadError: If the upload failed (offline, network, refused).
    """
    folder = Path(folder)
    bad = nonfinite_weights(folder)
    if bad:
        raise CheckpointFolderError(f"{folder} is not uploaded: {_nonfinite_problem(bad)}")
    # A fresh list each call: upload_folder extends it in place.
    return _upload(folder, repo_id, _ignore_patterns(folder), private, revision, commit_message, token)


def _link_or_copy(source: Path, target: Path) -> None:
    """`target` with the content of `source`: a hard link where the file system allows (no copy of the weights)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@contextlib.contextmanager
def _staging_folder(folder: Path) -> Iterator[Path]:
    """A temporary folder, beside `folder` where it can be (so hard links work), else in the system's temp."""
    try:
        staging = tempfile.TemporaryDirectory(prefix=f".{folder.name}.push-", dir=folder.resolve().parent)
    except OSError:  # a read-only parent
        staging = tempfile.TemporaryDirectory(prefix=f"{folder.name}.push-")
    with staging as path:
        yield Path(path)


@contextlib.contextmanager
def staged(folder: str | Path, card: ModelCard) -> Iterator[Path]:
    """Stage a temporary copy of exactly what the upload sends.

    The copy holds the folder's files (less `IGNORE_PATTERNS` and stale code), `card` as `README.md`, and `handler.py` /
    `requirements.txt` where the folder lacks them. The model folder itself is not written to; the copy is removed
    afterwards.

    Args:
        folder (`str` or `Path`):
            The model folder.
        card (`ModelCard`):
            The card to send.

    Yields:
        `Path`: The staging folder.
    """
    folder = Path(folder)
    with _staging_folder(folder) as staging:
        for name, _ in files_to_upload(folder):
            if name != "README.md":  # written fresh below, never through a link to the folder's own card
                _link_or_copy(folder / name, staging / name)
        card.save(staging / "README.md")
        add_endpoint_files(staging)
        yield staging


def push(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
):
    """Check `folder`, regenerate its card for `repo_id` and upload a staged copy of it (see `staged`).

    Once the upload succeeded the folder gets the new card and endpoint files too.

    Args:
        folder (`str` or `Path`):
            The model folder.
        repo_id (`str`):
            The model repository.
        private (`bool`, *optional*, defaults to `False`):
            Whether to create the repo private.
        revision (`str`, *optional*):
            The branch to push to.
        commit_message (`str`, *optional*):
            The commit message; a default one when `None`.
        token (`str`, *optional*):
            The Hub token; `HF_TOKEN` or the saved login when `None`.
        dry_run (`bool`, *optional*, defaults to `False`):
            Touch neither the network nor the folder, and return what would be uploaded.

    Returns:
        `CommitInfo` or `list[tuple[str, int]]`: The commit info of `HfApi.upload_folder`, or with `dry_run` the
        `(path, bytes)` list of `files_to_upload` with the card as it would be written.

    Raises:
        CheckpointFolderError: Naming what is missing or wrong in the folder.
        HubUploadError: If the upload fails.
    """
    folder = Path(folder)
    problems = check_folder(folder)
    if problems:
        raise CheckpointFolderError(f"{folder} is not a loadable DRL checkpoint:\n- " + "\n- ".join(problems))
    card = regenerate_card(folder, repo_id)
    if dry_run:
        card_size = len(str(card).encode("utf-8"))
        added = {"README.md": card_size}
        if not (folder / "handler.py").is_file():
            added["handler.py"] = HANDLER_SOURCE.stat().st_size
        if not (folder / "requirements.txt").is_file():
            added["requirements.txt"] = len(ENDPOINT_REQUIREMENTS)
        listed = [(name, size) for name, size in files_to_upload(folder) if name not in added]
        return sorted([*listed, *added.items()])
    with staged(folder, card) as staging:
        result = _upload(staging, repo_id, list(IGNORE_PATTERNS), private, revision, commit_message, token)
    # Uploaded: the folder now holds what the repo holds.
    card.save(folder / "README.md")
    add_endpoint_files(folder)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (underscores or hyphens in option names).

    Args:
        argv (`list[str]`, *optional*):
            The arguments; `sys.argv[1:]` when `None`.

    Returns:
        `argparse.Namespace`: The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a folder written by train.py or convert_official_checkpoint.py")
    parser.add_argument("--repo_id", "--repo-id", required=True, help="user/name of the model repo")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to push to (created from main when missing)")
    parser.add_argument("--commit_message", "--commit-message")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--dry_run", "--dry-run", action="store_true", help="list what would be uploaded; no network")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the push (or dry run).

    Args:
        argv (`list[str]`, *optional*):
            The arguments; `sys.argv[1:]` when `None`.

    Returns:
        `int`: The process exit code.
    """
    args = parse_args(argv)
    try:
        result = push(
            args.folder, args.repo_id, args.private, args.revision, args.commit_message, args.token, args.dry_run
        )
    except (CheckpointFolderError, HubUploadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    target = f"https://huggingface.co/{args.repo_id}" + (f" (branch {args.revision})" if args.revision else "")
    if args.dry_run:
        print(f"dry run: would upload {len(result)} files ({sum(size for _, size in result):,} bytes) to {target}")
        for name, size in result:
            print(f"{size:>14,}  {name}")
        return 0
    print(f"pushed {args.folder} to {target}: {getattr(result, 'commit_url', None) or 'done'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

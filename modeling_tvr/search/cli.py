"""Search a folder of videos by text from the command line.

    python -m modeling_tvr.search --model outputs/drl-toy --videos ~/clips "a red circle moves to the left"

The folder is indexed on first use (cached in `<videos>/.drl-index/<digest>/`, the digest of the model's weights and
the processor's video settings, or `--index DIR`); later runs
only encode files that are new or changed and drop deleted ones, so a query over an indexed folder takes the time of
loading the model and the index. Runs under `accelerate launch` too: each process encodes its share of the videos.
The arguments (video folder, model folder or Hub id) are checked before torch or the model are loaded, so a mistyped
path is reported at once. File names print as they are, or quoted with escapes when they hold control characters
or bytes that are not text, so that every hit is one line.
"""

import argparse
import difflib
import hashlib
import json
import logging
import os
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..caption_checks import caption_problem
from .video_files import VIDEO_EXTENSIONS, find_videos

# Hidden, so the walk over the video folder never enters it (`video_files`).
INDEX_FOLDER = ".drl-index"
# Characters printed as escapes: controls (a newline would split a line, ESC starts terminal sequences), line and
# paragraph separators, and lone surrogates, which stand for the bytes of a file name that are not UTF-8 (PEP 383).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_character(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name: shown as that byte
        return f"\\x{code - 0xDC00:02x}"
    if character in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[character]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _printable(character: str, encoding: str) -> bool:
    if unicodedata.category(character) in _UNSAFE_CATEGORIES:
        return False
    try:
        character.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def escape(text: str, encoding: str = "utf-8", quoted: bool = False) -> str:
    """`text` with the characters that would break a line or cannot be written in `encoding` as escapes (`\\n`,
    `\\xff`, ...); `quoted` also escapes backslashes and double quotes, for inside quotes."""
    pieces = []
    for character in text:
        if quoted and character in '\\"':
            pieces.append("\\" + character)
        else:
            pieces.append(character if _printable(character, encoding) else _escape_character(character))
    return "".join(pieces)


def display_name(name: str, encoding: str = "utf-8") -> str:
    """A file name or query as printed: as it is, or in double quotes with escapes when it holds characters that
    `escape` changes (or starts with a double quote, which would read as such a name)."""
    if escape(name, encoding) == name and not name.startswith('"'):
        return name
    return f'"{escape(name, encoding, quoted=True)}"'


def _encoding(stream) -> str:
    return getattr(stream, "encoding", None) or "utf-8"


def say(text: str, stream=None) -> None:
    """Prints a line that cannot abort the command: what the stream cannot encode comes out escaped."""
    stream = stream or sys.stdout
    print(escape(text, _encoding(stream)), file=stream)


def _reads_as_local_path(name: str) -> bool:
    """Whether a `--model` value that names nothing on disk was meant as a local path rather than a Hub id.

    Hub ids are `name` or `owner/name` of letters, digits, `-`, `_` and `.`, starting with neither `.` nor `/`; so
    anything starting with `/`, `~` or `.`, or with more than two parts, is a path. `owner/name` is read as a path
    too when `owner` is a folder here (`outputs/drl-tyo` beside `outputs/`): a misspelled local folder, which would
    otherwise be looked up on the Hub, with retries, and blamed on the connection.
    """
    if os.path.isabs(name) or name.startswith(("~", ".", os.sep, os.altsep or os.sep)):
        return True
    parts = Path(name).parts
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())


def _missing_folder_error(name: str) -> str:
    path = Path(name).expanduser()
    where = "" if os.path.isabs(path) else " here"
    message = f"--model {name}: no folder {name}{where}"
    if path.parent.is_dir():
        folders = [entry.name for entry in path.parent.iterdir() if entry.is_dir()]
        guess = difflib.get_close_matches(path.name, folders, n=1)
        if guess:
            message += f" (did you mean {os.path.join(os.path.dirname(name), guess[0])}?)"
    parts = Path(name).parts
    if len(parts) == 2 and not name.startswith(("~", ".")) and not os.path.isabs(name):
        return message + (
            f"; {parts[0]}/ is a folder here, so it is read as a local path (for the Hub repository {name}, run "
            "from another folder)."
        )
    return message + "."


def model_location_error(name: str) -> str | None:
    """Why `name` cannot be a saved DRL model folder or Hub repository, or None if it may be one.

    A local folder must hold `config.json`. Anything else must be a valid Hub id; offline (`HF_HUB_OFFLINE=1`), it must
    also be in the Hub cache, since nothing else could provide it.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return None
        return f"--model {name}: the folder holds no config.json, so it is not a saved DRL model."
    if path.exists():
        return f"--model {name}: a file, not a model folder or Hub id."
    if _reads_as_local_path(name):
        return _missing_folder_error(name)
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return f"--model {name}: no such folder or Hub id."
    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(name, "config.json"), str):
        return f"--model {name}: no such folder or Hub id (offline, and not in the local Hub cache)."
    return None


def load_model_and_processor(name_or_path: str, device: str | None = None):
    """A DRL model (eval mode) and its processor from a saved folder or a Hub repository."""
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(name_or_path, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(name_or_path, trust_remote_code=True)
    if device:
        model.to(device)
    return model, processor


def _whole_number(minimum: int):
    """An argparse type: a whole number of at least `minimum` (a usage error naming the value otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least {minimum}")
        return value

    return parse


def query_problem(queries: list[str]) -> str | None:
    """What is wrong with the first query that cannot be encoded (empty, blank, only invisible characters)."""
    for number, query in enumerate(queries, start=1):
        problem = caption_problem(query)
        if problem is not None:
            return f'query {number} ("{escape(query, quoted=True)}") {problem}; every query needs at least one word.'
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modeling_tvr.search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("queries", nargs="+", help="one or more text queries")
    parser.add_argument("--model", required=True, help="a saved DRL folder or Hub repository")
    parser.add_argument(
        "--videos", required=True, help="folder of videos (searched recursively; hidden files and folders skipped)"
    )
    parser.add_argument("--index", help="where to keep the index (default: <videos>/.drl-index/<model digest>)")
    parser.add_argument("--top-k", type=_whole_number(1), default=10, help="videos listed per query (default 10)")
    parser.add_argument(
        "--recall-target",
        type=float,
        default=0.999,
        help="recall of the exact top-k the search aims at, in [0.5, 1); higher re-ranks more videos",
    )
    parser.add_argument(
        "--candidates",
        type=_whole_number(1),
        help="instead: a fixed number of videos (best by summary vector) re-ranked exactly; >= the index size is "
        "exhaustive search",
    )
    parser.add_argument("--batch-size", type=_whole_number(1), default=16)
    parser.add_argument("--num-workers", type=_whole_number(0), default=0, help="DataLoader workers decoding videos")
    parser.add_argument("--device", help="e.g. cuda; default: CPU, or this process's device under accelerate")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (1 with a one-line `error: ...` for a user error)."""
    args = parse_args(argv)
    problem = query_problem(args.queries)
    if problem is None:
        problem = model_location_error(args.model)
    if problem is None and not Path(args.videos).expanduser().is_dir():
        problem = f"--videos {args.videos}: no such folder."
    if problem is None and not 0.5 <= args.recall_target < 1:
        problem = f"--recall-target {args.recall_target}: must be in [0.5, 1) (--candidates N for a fixed count)."
    if problem is not None:
        say(f"error: {problem}", sys.stderr)
        return 1
    try:
        return run(args)
    except (OSError, ValueError) as error:  # missing folder or model, full disk, mismatched index, ...
        say(f"error: {error}", sys.stderr)
        return 1


def index_folder(videos: str | os.PathLike, model, processor) -> Path:
    """The default index location: one folder per model weights and video processor settings, so that another
    frame count or resolution gets an index of its own rather than a mismatch with the one already there."""
    from .signature import index_signature

    signature = json.dumps(index_signature(model, processor), sort_keys=True)
    return Path(videos) / INDEX_FOLDER / hashlib.blake2b(signature.encode(), digest_size=16).hexdigest()


@contextmanager
def _failures_listed_here() -> Iterator[None]:
    """Drops the index's log summary of undecodable videos while it indexes: `run` lists each of them itself, one
    line per file relative to the folder, and a second report of the same files would only be noise."""
    index_logger = logging.getLogger("modeling_tvr.search.index")

    def not_failure_summary(record: logging.LogRecord) -> bool:
        return not hasattr(record, "failed_videos")

    index_logger.addFilter(not_failure_summary)
    try:
        yield
    finally:
        index_logger.removeFilter(not_failure_summary)


def run(args: argparse.Namespace) -> int:
    """Indexes (or refreshes) the folder and prints the ranked videos of each query."""
    videos = find_videos(args.videos)
    if not videos:
        say(f"error: no video files under {args.videos} ({', '.join(VIDEO_EXTENSIONS)}).", sys.stderr)
        return 1
    import torch
    from accelerate import PartialState

    from .index import VideoIndex

    state = PartialState(cpu=not torch.accelerator.is_available())
    model, processor = load_model_and_processor(
        args.model, args.device or (str(state.device) if state.num_processes > 1 else None)
    )
    index_dir = Path(args.index) if args.index else index_folder(args.videos, model, processor)
    with _failures_listed_here():
        index = VideoIndex.sync(
            index_dir,
            model,
            processor,
            videos,
            root=args.videos,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
        )
    if not state.is_main_process:
        return 0
    err = _encoding(sys.stderr)
    say(f"{len(index)} video(s) indexed in {index_dir}", sys.stderr)
    for path, reason in index.failed.items():
        say(f"not indexed: {display_name(os.path.relpath(path, args.videos), err)}: {reason}", sys.stderr)
    results = index.search(args.queries, top_k=args.top_k, candidates=args.candidates, recall_target=args.recall_target)
    out = _encoding(sys.stdout)
    for query, hits in zip(args.queries, results, strict=True):
        print(f"\n{display_name(query, out)}")
        for rank, hit in enumerate(hits, start=1):
            print(f"{rank:>4}. {hit.score:+.4f}  {display_name(os.path.relpath(hit.video, args.videos), out)}")
    return 0
